"""The book's figures, drawn from the tidy tables of `report`: mean over seeds, band = 1 std."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

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


def method_of(label: str) -> str:
    """The method behind a model label: `cf_k-k3` -> `cf_k`, `retrain-r1` -> `retrain`."""
    return label.split("-", 1)[0]


def method_color(method_or_label: str) -> str:
    """The colour of a method (or of a model label, through its method) on every page."""
    method = method_of(method_or_label)
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    from ..unlearn import METHODS
    names = [m for m in METHODS if m not in METHOD_COLORS]
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
        ax.plot(m.depth, m["mean"], marker=".", label=label, **style)
        if (m["count"] > 1).any():
            ax.fill_between(m.depth, m["mean"] - m["std"], m["mean"] + m["std"], alpha=0.12, color=style["color"])
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
        ax.bar(np.arange(len(classes)) + j * width, m.to_numpy() / m.mean(), width, label=layer)
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
        ax.errorbar(m.eps, m["mean"], yerr=m["std"].fillna(0), marker="o", capsize=2, label=label, **label_style(label))
    ax.set(xlabel=ATTACK_EPS_AXIS, ylabel="accuracy (%)", title=f"{arch} · {attack.upper()}")
    ax.legend(fontsize=8)
    return ax


def gap_heatmap(delta: pd.DataFrame, arch: str, ax=None):
    """Methods × layers of eps - eps_Retrain (diverging colour map centred at 0)."""
    d = delta[delta.arch == arch].pivot_table(index="label", columns="depth", values="delta", aggfunc="mean")
    ax = ax or plt.subplots(figsize=(BOOK_WIDTH, 0.3 * len(d) + 1.4))[1]
    lim = np.nanmax(np.abs(d.to_numpy())) or 1.0
    im = ax.imshow(d.to_numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
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
        ax.scatter(np.asarray(x)[sel], np.asarray(y)[sel], s=22, label=g, color=method_color(str(g)))
    if len(x) > 1 and np.std(x) > 0:
        a, b = np.polyfit(x, y, 1)
        xs = np.linspace(np.min(x), np.max(x), 10)
        ax.plot(xs, a * xs + b, color="gray", lw=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return ax


def claim_effects(claims):
    """One panel per claim: its effect per architecture with the 95% interval; 0 is no effect."""
    fig, axes = plt.subplots(1, len(claims), figsize=(3.2 * len(claims), 2.6))
    for ax, c in zip(np.atleast_1d(axes), claims):
        per_arch = {a: (e["ua_gap"] if "ua_gap" in e else e) for a, e in c["per_arch"].items()}
        names = list(per_arch)
        for i, a in enumerate(names):
            e = per_arch[a]
            mid = e.get("mean", e.get("r"))
            lo, hi = e["lo"], e["hi"]
            ax.errorbar([mid], [i], xerr=[[mid - lo if np.isfinite(lo) else 0], [hi - mid if np.isfinite(hi) else 0]],
                        fmt="o", capsize=3, color=plt.cm.tab10(i))
        ax.axvline(0, color="gray", lw=1)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_ylim(-0.7, len(names) - 0.3)
        ax.set_title(f"{c['claim']}: {c['verdict']}", fontsize=9)
        ax.set_xlabel({"C1": "Δε vs Retrain (%)", "C2": "Spearman r", "C3": "later − early (%)",
                       "C4": "approx − CF/BS (%)", "C5": "|UA − UA_Retrain|"}.get(c["claim"], "effect"), fontsize=8)
    plt.tight_layout()
    return fig
