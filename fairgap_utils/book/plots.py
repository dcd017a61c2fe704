"""The book's figures, drawn from the tidy tables of `report`: mean over seeds, band = 1 std.

Every number a figure draws passes through `drawn` first, so a rebuild on another CPU gives the
same PNG bytes (see `drawn`)."""
from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..manifest import method_facts
from .report import mean_std

BOOK_WIDTH = 8.3   # inches: about 750 px of the book's content column at the notebooks' 90 dpi

# One colour per method on every page (matplotlib figures and the book's interactive explorers):
# Tableau 10 without its green, which marks Retrain; the original is black and dashed. A method
# added to the registry later gets a colour from SPARE_COLORS by its position in the registry.
METHOD_COLORS = {
    "original": "#000000", "retrain": "#2ca02c",
    "ft": "#1f77b4", "cf_k": "#ff7f0e", "eu_k": "#d62728", "ga": "#9467bd", "rl": "#8c564b",
    "salun": "#e377c2", "scrub": "#7f7f7f", "bs": "#bcbd22", "l1_sparse": "#17becf",
}
SPARE_COLORS = ("#393b79", "#843c39", "#7b4173", "#637939", "#8c6d31", "#3182bd", "#e6550d")
STYLE = {"original": dict(color=METHOD_COLORS["original"], ls="--", lw=1.5),
         "retrain": dict(color=METHOD_COLORS["retrain"], lw=2.5)}


# What a figure draws is rounded to a grid of 2^-DRAWN_BITS of the largest magnitude among the
# values drawn together: about a millionth of the axis range, a thousandth of a pixel or less.
DRAWN_BITS = 20


def drawn(values):
    """`values` as a figure draws them: rounded to a grid of 2^-DRAWN_BITS of their largest magnitude.

    Fits, sums and logarithms can differ in the last bits from one CPU to another (OpenBLAS picks
    its kernel by CPU, numpy its SIMD loops), and matplotlib can turn even such differences into
    other PNG bytes: the points of a fitted line lie on one straight line, and how Agg joins its
    segments hangs on those bits, so a least-squares line fitted on another OpenBLAS kernel gets
    other anti-aliased pixels. The grid is a power of two, so the rounding is exact
    arithmetic and the same everywhere; values that differ by far less than a grid step land on the
    same point. NaN and infinities pass through. A pandas Series stays a Series (same index), a
    scalar a float."""
    a = np.asarray(values, dtype=float)
    finite = np.abs(a[np.isfinite(a)])
    if finite.size and finite.max() > 0:
        step = np.ldexp(1.0, int(np.frexp(finite.max())[1]) - DRAWN_BITS)
        a = np.round(a / step) * step
    if isinstance(values, pd.Series):
        return pd.Series(a, index=values.index, name=values.name)
    return float(a) if a.ndim == 0 else a


def _fitted_line(x, y, points: int):
    """The least-squares line through (x, y), as `points` drawn points across the range of x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    a, b = np.polyfit(x, y, 1)
    xs = np.linspace(x.min(), x.max(), points)
    return drawn(xs), drawn(a * xs + b)


def method_of(label: str) -> str:
    """The method behind a model label: `cf_k-k3` -> `cf_k`, `retrain-r1` -> `retrain`."""
    return label.split("-", 1)[0]


def method_color(method_or_label: str) -> str:
    """The colour of a method (or of a model label, through its method) on every page."""
    method = method_of(method_or_label)
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    names = [m for m in method_facts() if m not in METHOD_COLORS]
    i = names.index(method) if method in names else sum(map(ord, method))
    return SPARE_COLORS[i % len(SPARE_COLORS)]


def label_style(label: str) -> dict:
    """Line style of a model label: the method's colour; original dashed, Retrain thick, variants
    (`cf_k-k3`) and Retrain replicates (`retrain-r1`) dotted."""
    if label in STYLE:
        return dict(STYLE[label])
    style = dict(color=method_color(label), lw=1.5)
    if label != method_of(label):
        style.update(ls=":", lw=1.2)
    return style


def _style(label, i=None):
    return label_style(label)


# Axis names with their units, shared by the figures and the explorers. ε is a difference of
# two per-class variances of a layer's features, so its unit is that of the features squared.
EPSILON_AXIS = "fairness-gap ε (feature variance)"
LAYER_AXIS = "normalization layer (index, input → output)"
ATTACK_EPS_AXIS = "attack strength ε (×1/255)"


def epsilon_by_layer(eps: pd.DataFrame, labels, arch: str, ax=None, title=None):
    """Fairness-gap per normalization layer (x: depth), one line per model, band = std over seeds."""
    ax = ax or plt.subplots(figsize=(BOOK_WIDTH, 3.6))[1]
    d = eps[(eps.arch == arch) & eps.label.isin(labels)]
    for label in labels:
        m = mean_std(d[d.label == label], ["depth"], "epsilon")
        if m.empty:
            continue
        style = label_style(label)
        ax.plot(m.depth, drawn(m["mean"]), marker=".", label=label, **style)
        if (m["count"] > 1).any():
            ax.fill_between(m.depth, drawn(m["mean"] - m["std"]), drawn(m["mean"] + m["std"]), alpha=0.12,
                            color=style["color"])
    ax.set(xlabel=LAYER_AXIS, ylabel=EPSILON_AXIS, title=title or arch)
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.legend(fontsize=8, ncol=2)
    return ax


def class_sigma_bars(sig: pd.DataFrame, arch: str, label: str, layers: list[str], ax=None):
    """Per-class sigma at a few layers (grouped bars), mean over seeds."""
    ax = ax or plt.subplots(figsize=(BOOK_WIDTH, 3.2))[1]
    d = sig[(sig.arch == arch) & (sig.label == label) & sig.layer.isin(layers)]
    classes = list(dict.fromkeys(d.sort_values("class_index")["class"]))
    width = 0.8 / max(len(layers), 1)
    for j, layer in enumerate(layers):
        m = d[d.layer == layer].groupby("class_index")["sigma"].mean()
        ax.bar(np.arange(len(classes)) + j * width, drawn(m.to_numpy() / m.mean()), width, label=layer)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, rotation=30, fontsize=8)
    ax.set(ylabel="σ_c / mean σ over classes (ratio)", title=f"{arch} · {label}: per-class σ")
    ax.legend(fontsize=7)
    return ax


def attack_curves(att: pd.DataFrame, labels, arch: str, attack: str = "fgsm", ax=None):
    """Accuracy under attack against eps (in 1/255), one line per model."""
    ax = ax or plt.subplots(figsize=(BOOK_WIDTH / 2, 3.4))[1]
    d = att[(att.arch == arch) & (att.attack == attack) & att.label.isin(labels)]
    for label in labels:
        m = mean_std(d[d.label == label], ["eps"], "accuracy")
        if m.empty:
            continue
        ax.errorbar(m.eps, drawn(m["mean"]), yerr=drawn(m["std"].fillna(0)), marker="o", capsize=2, label=label,
                    **label_style(label))
    ax.set(xlabel=ATTACK_EPS_AXIS, ylabel="accuracy (%)", title=f"{arch} · {attack.upper()}")
    ax.legend(fontsize=8)
    return ax


def gap_heatmap(delta: pd.DataFrame, arch: str, ax=None):
    """Methods × layers of eps - eps_Retrain (diverging colour map centred at 0)."""
    d = delta[delta.arch == arch].pivot_table(index="label", columns="depth", values="delta", aggfunc="mean")
    ax = ax or plt.subplots(figsize=(BOOK_WIDTH, 0.3 * len(d) + 1.4))[1]
    values = drawn(d.to_numpy())
    lim = np.nanmax(np.abs(values)) or 1.0
    im = ax.imshow(values, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(d)), d.index, fontsize=9)
    step = max(1, len(d.columns) // 12)
    ax.set_xticks(range(0, len(d.columns), step), d.columns[::step])
    ax.set(xlabel=LAYER_AXIS, title=f"{arch}: ε − ε_Retrain (mean over seeds)")
    ax.grid(False)
    plt.colorbar(im, ax=ax, shrink=0.9, pad=0.01).set_label("ε − ε_Retrain (feature variance)", fontsize=9)
    return ax


def scatter_with_fit(x, y, groups, ax=None, xlabel="", ylabel="", title=""):
    """One point per model, coloured by its method (`groups`: method names or model labels)."""
    ax = ax or plt.subplots(figsize=(BOOK_WIDTH / 2, 3.4))[1]
    for g in pd.unique(groups):
        sel = np.asarray(groups) == g
        ax.scatter(drawn(np.asarray(x)[sel]), drawn(np.asarray(y)[sel]), s=22, label=g, color=method_color(str(g)))
    if len(x) > 1 and np.std(x) > 0:
        ax.plot(*_fitted_line(x, y, 10), color="gray", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return ax


VERDICT_COLORS = {"supported": "#1a7f37", "contradicted": "#cf222e", "different": "#cf222e",
                  "equivalent": "#0969da", "inconclusive": "#6e7781"}


def claim_effects(claims, fontsize: int = 11):
    """One row per claim and part: the effect per architecture (mean over seeds) with its
    interval, the equivalence band ±noise floor shaded, the number of seeds and the verdict
    of that part (a claim of several parts gives its combined verdict in the title)."""
    rows = [(c, p) for c in claims for p in c.parts]
    n_arch = max((len(p.per_arch) for _, p in rows), default=1)
    fig, axes = plt.subplots(len(rows), 1, figsize=(BOOK_WIDTH, (0.95 + 0.45 * n_arch) * len(rows) + 0.3),
                             squeeze=False, layout="constrained")
    claimed = {1: "claim: > 0", -1: "claim: < 0", 0: "claim: inside the band"}
    for ax, (c, p) in zip(axes[:, 0], rows):
        archs = list(p.per_arch)
        for i, arch in enumerate(archs):
            v = p.per_arch[arch]
            e, color = v.estimate, VERDICT_COLORS.get(v.verdict, "black")
            mean, lo, hi, margin = drawn([e.mean, e.lo, e.hi, v.margin])
            if np.isfinite(margin):
                ax.fill_between([-margin, margin], i - 0.3, i + 0.3, color="#0969da", alpha=0.15, lw=0)
            if e.has_interval:
                ax.errorbar([mean], [i], xerr=[[mean - lo], [hi - mean]], fmt="o", ms=7, capsize=5, lw=2, color=color)
            elif np.isfinite(mean):
                ax.plot([mean], [i], "o", ms=7, mfc="white", color=color)
            note = ax.annotate(f"{v.verdict}\n{e.seeds_text}", (1.02, i), xycoords=("axes fraction", "data"),
                               va="center", fontsize=fontsize - 1, color=color, annotation_clip=False)
            note.set_in_layout(False)
        ax.axvline(0, color="black", lw=1)
        ax.set_yticks(range(len(archs)), archs, fontsize=fontsize)
        ax.set_ylim(len(archs) - 0.4, -0.6)   # first architecture on top
        ax.tick_params(axis="x", labelsize=fontsize - 1)
        ax.set_xlabel(f"{p.name} ({p.unit}); {claimed[p.direction]}", fontsize=fontsize)
        if p is c.parts[0]:
            differs = len(c.parts) > 1 or any(v.verdict != c.verdicts.get(a) for a, v in p.per_arch.items())
            title = f"{c.claim}: {c.statement}" + (f" → {c.overall}" if differs else "")
        else:
            title = f"{c.claim}, continued"
        ax.set_title(textwrap.fill(title, 72), fontsize=fontsize, loc="left")
        lo, hi = ax.get_xlim()
        span = max(abs(lo), abs(hi))
        ax.set_xlim(-span, span)
    fig.get_layout_engine().set(rect=(0, 0, 0.8, 1), h_pad=0.08)
    return fig


def log_ratio_heatmap(layers: pd.DataFrame, arch: str, column: str = "log_vs_original", labels=None, ax=None,
                      fontsize: int = 10):
    """Methods × layers of 100·log(ε/ε_ref), mean over seeds, on a diverging map centred at 0."""
    d = layers[(layers.arch == arch) & ~layers.label.isin(["original"])]
    d = d[d.label.isin(labels)] if labels is not None else d[(d.label == d.method) & (d.label != "retrain")]
    table = d.assign(v=100 * d[column]).pivot_table(index="label", columns="depth", values="v", aggfunc="mean")
    if labels is not None:
        table = table.reindex([lbl for lbl in labels if lbl in table.index])
    ax = ax or plt.subplots(figsize=(BOOK_WIDTH, 0.32 * len(table) + 1.6), layout="constrained")[1]
    values = drawn(table.to_numpy(dtype=float))
    lim = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    im = ax.imshow(values, cmap="RdBu_r", vmin=-(lim or 1.0), vmax=lim or 1.0, aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(table)), table.index, fontsize=fontsize)
    step = max(1, len(table.columns) // 12)
    ax.set_xticks(range(0, len(table.columns), step), table.columns[::step], fontsize=fontsize - 1)
    ref = "own original" if column == "log_vs_original" else "Retrain"
    ax.set_xlabel("normalization layer (index, input → output)", fontsize=fontsize)
    ax.set_title(f"{arch}: change of ε from {ref}, 100·log(ε/ε_{ref.split()[-1]}) (mean over seeds)",
                 fontsize=fontsize)
    cb = plt.colorbar(im, ax=ax, shrink=0.9, pad=0.01)
    cb.set_label("log-ratio ×100 (≈ %)", fontsize=fontsize - 1)
    return ax


def retrain_distance_by_layer(layers: pd.DataFrame, floors: pd.DataFrame, arch: str, labels, ax=None,
                              fontsize: int = 10):
    """Per layer: |100·log(ε/ε_Retrain)|, mean over seeds, one line per method; the band is the
    Retrain-vs-Retrain noise floor at that layer (RMS log-ratio between two Retrains)."""
    ax = ax or plt.subplots(figsize=(BOOK_WIDTH, 3.4), layout="constrained")[1]
    d = layers[(layers.arch == arch) & layers.label.isin(labels)]
    for label in labels:
        g = d[d.label == label].assign(v=lambda x: 100 * x.log_vs_retrain.abs()).groupby("depth").v.mean()
        if len(g):
            ax.plot(g.index, drawn(g.to_numpy()), marker=".", label=label, **label_style(label))
    f = floors[floors.arch == arch].sort_values("depth")
    if len(f) and f.floor.notna().any():
        ax.fill_between(f.depth, 0, drawn(100 * f.floor), color="gray", alpha=0.25,
                        label=f"noise floor ({int(f.n_retrains.max())} Retrains)")
    else:
        ax.text(0.99, 0.95, "no noise floor (no Retrain replicates)", transform=ax.transAxes, ha="right", va="top",
                fontsize=fontsize - 1, color="gray")
    ax.set_xlabel("normalization layer (index, input → output)", fontsize=fontsize)
    ax.set_ylabel("|log(ε/ε_Retrain)| ×100", fontsize=fontsize)
    ax.set_title(f"{arch}: distance to Retrain per layer (mean over seeds)", fontsize=fontsize)
    ax.legend(fontsize=fontsize - 2, ncol=4, loc="upper left")
    return ax


def thirds_bars(thirds: pd.DataFrame, arch: str, ax=None, fontsize: int = 10):
    """Mean |100·log(ε/ε_original)| per third of the layers, per method; error bars: the seed
    t-interval (none with too few seeds)."""
    d = thirds[thirds.arch == arch]
    labels = list(dict.fromkeys(d.label))
    order = ["early", "intermediate", "last"]
    ax = ax or plt.subplots(figsize=(BOOK_WIDTH, 3.2), layout="constrained")[1]
    width = 0.8 / len(order)
    for j, third in enumerate(order):
        t = d[d.third == third].set_index("label").reindex(labels)
        x = np.arange(len(labels)) + (j - 1) * width
        mean, lo, hi = drawn(t["mean"]), drawn(t.lo), drawn(t.hi)
        err = np.vstack([(mean - lo).fillna(0).clip(lower=0), (hi - mean).fillna(0).clip(lower=0)])
        ax.bar(x, mean, width, yerr=err, capsize=2, label=third, color=plt.cm.Blues(0.35 + 0.3 * j))
    ax.set_xticks(range(len(labels)), [d[d.label == lbl].method.iloc[0] for lbl in labels], fontsize=fontsize)
    ax.set_ylabel("|log(ε/ε_original)| ×100", fontsize=fontsize)
    ax.set_title(f"{arch}: where the change of ε sits (third of the layers)", fontsize=fontsize)
    ax.legend(fontsize=fontsize - 1, title="layers", title_fontsize=fontsize - 1)
    return ax


def k_sweep(sweep: pd.DataFrame, arch: str, panels=None, k_unit: str = "k", adv_label: str = "adversarial accuracy (%)",
            fontsize: int = 10):
    """Panels against k for CF-k and EU-k (mean ± std over seeds); FT at the right, Retrain as a line.
    `panels`: [(column, axis label with unit, draw Retrain's line?)]; default: change of ε from the own
    original, TA, adversarial accuracy, time, share of parameters trained (and peak memory if measured)."""
    d = sweep[sweep.arch == arch]
    if panels is None:
        panels = [("own_change", "Δε from own original\n(log-ratio ×100)", False), ("TA", "TA (%)", True),
                  ("adv", adv_label, True), ("time_s", "time (s)", False),
                  ("param_share", "parameters trained (%)", False)]
        if d.peak_memory_mb.notna().any():
            panels.append(("peak_memory_mb", "peak memory (MiB)", False))
    cols = min(3, len(panels))
    rows_ = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows_, cols, figsize=(BOOK_WIDTH, 2.6 * rows_ + 0.4), squeeze=False, layout="constrained")
    ks = sorted(d[d.method.isin(["cf_k", "eu_k"])].k.dropna().unique())
    ft_x = (max(ks) + 1) if ks else 1
    for ax, (col, label, retrain_line) in zip(axes.flat, panels):
        for method in ("cf_k", "eu_k"):
            g = d[d.method == method].groupby("k")[col].agg(["mean", "std"]).reset_index()
            ax.errorbar(g.k, drawn(g["mean"]), yerr=drawn(g["std"].fillna(0)), marker="o", capsize=3,
                        color=method_color(method),
                        label={"cf_k": "CF-k", "eu_k": "EU-k"}[method])
        ft = d[d.label == "ft"][col]
        if len(ft):
            ax.errorbar([ft_x], [drawn(ft.mean())], yerr=[drawn(ft.std()) if len(ft) > 1 else 0], marker="s",
                        color=method_color("ft"), label="FT")
        ref = d[d.label == "retrain"][col]
        if retrain_line and len(ref):
            ax.axhline(drawn(ref.mean()), label="Retrain", **STYLE["retrain"])
        ax.set_xticks([*ks, ft_x], [f"{k:g}" for k in ks] + ["FT"], fontsize=fontsize - 1)
        ax.set_xlabel(k_unit, fontsize=fontsize - 1)
        ax.set_ylabel(label, fontsize=fontsize - 1)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=fontsize - 2)
    fig.suptitle(f"{arch}: CF-k and EU-k against k (mean ± std over seeds)", fontsize=fontsize)
    return fig


def c2_scatter(frame: pd.DataFrame, arch: str, outcome: str = "drop", ax=None, ylabel: str = "", fontsize: int = 10):
    """Layer-mean ε against an outcome, one colour per seed with its own least-squares line
    (correlations are within seed); collapsed models drawn as crosses, left out of the lines."""
    ax = ax or plt.subplots(figsize=(BOOK_WIDTH / 2, 3.3), layout="constrained")[1]
    d = frame[(frame.arch == arch) & ~frame.replicate]
    for i, (seed, g) in enumerate(d.groupby("seed")):
        color = plt.cm.Dark2(i % 8)
        ok, out = g[~g.collapsed], g[g.collapsed]
        ax.scatter(drawn(ok.eps_mean), drawn(ok[outcome]), s=28, color=color, label=f"seed {seed}")
        ax.scatter(drawn(out.eps_mean), drawn(out[outcome]), s=40, marker="x", color=color)
        if len(ok) > 2 and ok.eps_mean.std() > 0:
            ax.plot(*_fitted_line(ok.eps_mean, ok[outcome], 5), color=color, lw=1.2)
    if d.collapsed.any():
        ax.scatter([], [], s=40, marker="x", color="black", label="collapsed (left out)")
    ax.set_xlabel("layer-mean fairness-gap ε", fontsize=fontsize)
    ax.set_ylabel(ylabel or outcome, fontsize=fontsize)
    ax.legend(fontsize=fontsize - 2)
    return ax


def correlation_grid(grid: pd.DataFrame, arch: str, ax=None, fontsize: int = 10, alpha: float = 0.05):
    """The sensitivity grid as a heatmap of the mean within-seed ρ: rows attack × ε, columns
    σ definition × class set; '*' where the Holm-adjusted p < alpha, a box around the headline cell."""
    d = grid[grid.arch == arch].copy()
    d["row"] = d.attack.str.upper() + " " + d["ε×255"].map(lambda e: f"{e:g}/255")
    d["col"] = d["σ"] + " · " + d.classes
    table = d.pivot_table(index="row", columns="col", values="ρ", aggfunc="first", sort=False)
    ax = ax or plt.subplots(figsize=(BOOK_WIDTH, 0.42 * len(table) + 1.8), layout="constrained")[1]
    im = ax.imshow(drawn(table.to_numpy(dtype=float)), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for (i, row), (j, col) in ((a, b) for a in enumerate(table.index) for b in enumerate(table.columns)):
        cell = d[(d.row == row) & (d.col == col)].iloc[0]
        star = "*" if cell["p (Holm)"] < alpha else ""
        ax.text(j, i, f"{cell['ρ']:+.2f}{star}" if np.isfinite(cell["ρ"]) else "—", ha="center", va="center",
                fontsize=fontsize - 1)
        if cell.headline:
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.5, color="black"))
    ax.set_xticks(range(len(table.columns)), table.columns, fontsize=fontsize - 1, rotation=20, ha="right")
    ax.set_yticks(range(len(table.index)), table.index, fontsize=fontsize - 1)
    ax.set_xlabel("σ definition · classes in max/min", fontsize=fontsize)
    ax.set_title(f"{arch}: within-seed Spearman ρ(ε, drop), mean over seeds "
                 f"(* Holm-adjusted p < {alpha:g}; box: headline)", fontsize=fontsize)
    ax.grid(False)
    cb = plt.colorbar(im, ax=ax, shrink=0.9, pad=0.01)
    cb.set_label("ρ", fontsize=fontsize - 1)
    return ax


def lr_search(grid: pd.DataFrame, method: str, ax=None):
    """Avg. Gap to Retrain over the learning-rate grid of `tune` (log x), one line per
    (architecture, scenario); the rate chosen for each is ringed."""
    ax = ax or plt.subplots(figsize=(5.5, 3.4))[1]
    d = grid[grid.method == method]
    for i, ((arch, scenario), g) in enumerate(d.groupby(["arch", "scenario"], sort=True)):
        g, color = g.sort_values("lr"), plt.cm.tab10(i % 10)
        ax.plot(g.lr, drawn(g.avg_gap), marker="o", color=color, label=f"{arch} · {scenario}")
        best = g[g.chosen]
        ax.scatter(best.lr, drawn(best.avg_gap), s=180, facecolors="none", edgecolors=color, linewidths=2)
    ax.set_xscale("log")
    seeds = ", ".join(str(s) for s in sorted(set(d.seed)))
    ax.set(xlabel="learning rate", ylabel="Avg. Gap to Retrain (%)",
           title=f"{method}: learning-rate search (seed {seeds})")
    ax.legend(fontsize=8)
    return ax
