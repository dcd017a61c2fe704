"""The book's figures, drawn from the tidy tables of `report`: mean over seeds, band = 1 std."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .report import mean_std

STYLE = {"original": dict(color="black", ls="--"), "retrain": dict(color="tab:green", lw=2.5)}


def _style(label, i):
    return STYLE.get(label, dict(color=plt.cm.tab10(i % 10)))


def epsilon_by_layer(eps: pd.DataFrame, labels, arch: str, ax=None, title=None):
    """Fairness-gap per normalization layer (x: depth), one line per model, band = std over seeds."""
    ax = ax or plt.subplots(figsize=(8, 3.6))[1]
    d = eps[(eps.arch == arch) & eps.label.isin(labels)]
    for i, label in enumerate(labels):
        m = mean_std(d[d.label == label], ["depth"], "epsilon")
        if m.empty:
            continue
        ax.plot(m.depth, m["mean"], marker=".", label=label, **_style(label, i))
        if (m["count"] > 1).any():
            ax.fill_between(m.depth, m["mean"] - m["std"], m["mean"] + m["std"], alpha=0.15,
                            color=_style(label, i)["color"])
    ax.set(xlabel="normalization layer (input → output)", ylabel="fairness-gap ε", title=title or arch)
    ax.legend(fontsize=8, ncol=2)
    return ax


def class_sigma_bars(sig: pd.DataFrame, arch: str, label: str, layers: list[str], ax=None):
    """Per-class sigma at a few layers (grouped bars), mean over seeds."""
    ax = ax or plt.subplots(figsize=(8, 3.2))[1]
    d = sig[(sig.arch == arch) & (sig.label == label) & sig.layer.isin(layers)]
    classes = list(dict.fromkeys(d.sort_values("class_index")["class"]))
    width = 0.8 / max(len(layers), 1)
    for j, layer in enumerate(layers):
        m = d[d.layer == layer].groupby("class_index")["sigma"].mean()
        ax.bar(np.arange(len(classes)) + j * width, m.to_numpy() / m.mean(), width, label=layer)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2, classes, rotation=30, fontsize=8)
    ax.set(ylabel="σ_c / mean over classes", title=f"{arch} · {label}: per-class σ")
    ax.legend(fontsize=7)
    return ax


def attack_curves(att: pd.DataFrame, labels, arch: str, attack: str = "fgsm", ax=None):
    """Accuracy under attack against eps (in 1/255), one line per model."""
    ax = ax or plt.subplots(figsize=(5, 3.4))[1]
    d = att[(att.arch == arch) & (att.attack == attack) & att.label.isin(labels)]
    for i, label in enumerate(labels):
        m = mean_std(d[d.label == label], ["eps"], "accuracy")
        if m.empty:
            continue
        ax.errorbar(m.eps, m["mean"], yerr=m["std"].fillna(0), marker="o", capsize=2, label=label, **_style(label, i))
    ax.set(xlabel="ε (×1/255)", ylabel="accuracy (%)", title=f"{arch} · {attack.upper()}")
    ax.legend(fontsize=8)
    return ax


def gap_heatmap(delta: pd.DataFrame, arch: str, ax=None):
    """Methods × layers of eps - eps_Retrain (diverging colour map centred at 0)."""
    d = delta[delta.arch == arch].pivot_table(index="label", columns="depth", values="delta", aggfunc="mean")
    ax = ax or plt.subplots(figsize=(9, 0.35 * len(d) + 1.5))[1]
    lim = np.nanmax(np.abs(d.to_numpy())) or 1.0
    im = ax.imshow(d.to_numpy(), cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_yticks(range(len(d)), d.index, fontsize=8)
    ax.set(xlabel="normalization layer (input → output)", title=f"{arch}: ε − ε_Retrain")
    plt.colorbar(im, ax=ax, shrink=0.8)
    return ax


def scatter_with_fit(x, y, groups, ax=None, xlabel="", ylabel="", title=""):
    ax = ax or plt.subplots(figsize=(5, 3.8))[1]
    for i, g in enumerate(pd.unique(groups)):
        sel = np.asarray(groups) == g
        ax.scatter(np.asarray(x)[sel], np.asarray(y)[sel], s=22, label=g, color=plt.cm.tab10(i % 10))
    if len(x) > 1 and np.std(x) > 0:
        a, b = np.polyfit(x, y, 1)
        xs = np.linspace(np.min(x), np.max(x), 10)
        ax.plot(xs, a * xs + b, color="gray", lw=1)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
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


def lr_search(grid: pd.DataFrame, method: str, ax=None):
    """Avg. Gap to Retrain over the learning-rate grid of `tune` (log x), one line per
    (architecture, scenario); the rate chosen for each is ringed."""
    ax = ax or plt.subplots(figsize=(5.5, 3.4))[1]
    d = grid[grid.method == method]
    for i, ((arch, scenario), g) in enumerate(d.groupby(["arch", "scenario"], sort=True)):
        g, color = g.sort_values("lr"), plt.cm.tab10(i % 10)
        ax.plot(g.lr, g.avg_gap, marker="o", color=color, label=f"{arch} · {scenario}")
        best = g[g.chosen]
        ax.scatter(best.lr, best.avg_gap, s=180, facecolors="none", edgecolors=color, linewidths=2)
    ax.set_xscale("log")
    seeds = ", ".join(str(s) for s in sorted(set(d.seed)))
    ax.set(xlabel="learning rate", ylabel="Avg. Gap to Retrain (%)", title=f"{method}: learning-rate search (seed {seeds})")
    ax.legend(fontsize=8)
    return ax
