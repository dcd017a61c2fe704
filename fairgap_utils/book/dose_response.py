"""Conjecture 2 by intervention: KeepGap's dose-response (book/analysis_plan.md, "the dose-response").

A correlation across methods cannot say whether a higher fairness-gap causes vulnerability;
KeepGap's penalties move eps on purpose with everything else of RL fixed (data, schedule,
seeds). Per (architecture, target, seed), class-wise, on the seeds `AnalysisConfig.dose_seeds`:
RL and KeepGap at its calibrated weight w* times each of `dose_multipliers` (multiplier 0 is
RL bit for bit: RL's own result file is that point), and per model

- x: 100 * the mean over normalization layers of log(eps / eps_RL), eps of the headline
  sigma definition and class set (`AnalysisConfig.definition`, `class_set`), RL on the same seed;
- y: accuracy under the headline attack (`attack`, `attack_eps`) minus RL's on the same seed, points;
- clean: the test accuracy of the remaining classes (TA) minus RL's, beside it (a penalty that
  lowers eps may lower clean accuracy too).

The slope of y on x (least squares, per seed, over the grid) is the effect: the causal reading of
Conjecture 2 says lowering eps raises robustness, a slope < 0. `slope_estimates` gives the mean
slope over seeds with its t-interval per (architecture, target); the verdict (family 3 of the
plan) is drawn by the verdicts page.

Which result files are the grid: KeepGap's class-wise records of a dose seed whose hyperparameters
equal, but for the weight, those of the target's calibrated run (`keep_gap` for the default
target, `keep_gap-<target>` for another); that run's weight is w*.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..config import AnalysisConfig
from ..definitions import epsilon
from ..manifest import method_facts
from . import stats

METHOD, BASE = "keep_gap", "rl"
COLUMNS = ["arch", "seed", "target", "label", "weight", "multiplier", "x", "y", "clean", "attack_acc", "TA",
           "layers"]


def _default_target() -> str:
    return method_facts()[METHOD]["hyperparameters"]["target"]


def _hp(record: dict) -> dict:
    return record["stats"]["hyperparameters"]


def calibrated_label(target: str) -> str:
    """The label of the target's run at its calibrated weight (pipeline.runs_for): `keep_gap`, `keep_gap-spread`."""
    return METHOD if target == _default_target() else f"{METHOD}-{target}"


def log_epsilon(record: dict, definition: str = "channel", class_set: str = "all") -> dict:
    """{layer: log eps} of one result record (layers whose eps is not a positive number left out)."""
    out = {}
    for L in record["fairness"]:
        e = epsilon(L["sigma"][definition], class_set, record["forget_class"])
        if e > 0 and math.isfinite(e):
            out[L["layer"]] = math.log(e)
    return out


def attack_accuracy(record: dict, attack: str = "fgsm", eps: float = 4) -> float:
    """Accuracy (%) under `attack` at `eps` (in units of 1/255); NaN when the record has no such point."""
    for key, acc in record.get("attacks", {}).get(attack, {}).items():
        if math.isclose(float(key) * 255, eps, rel_tol=1e-6, abs_tol=1e-9):
            return float(acc)
    return float("nan")


def dose_frame(records, analysis: AnalysisConfig | None = None) -> pd.DataFrame:
    """One row per model of the grid (RL as multiplier 0 of each target): arch, seed, target, label, weight,
    multiplier (weight / w*), x, y, clean (TA minus RL's), attack_acc, TA, layers (how many entered x)."""
    a = analysis or AnalysisConfig()
    chosen = [r for r in records if r["scenario"] == "class" and r["seed"] in a.dose_seeds]
    by_chunk: dict[tuple, list] = {}
    for r in chosen:
        by_chunk.setdefault((r["arch"], r["seed"]), []).append(r)
    rows = []
    for (arch, seed), group in sorted(by_chunk.items()):
        base = next((r for r in group if r["label"] == BASE), None)
        if base is None:
            continue
        base_eps = log_epsilon(base, a.definition, a.class_set)
        base_acc, base_ta = attack_accuracy(base, a.attack, a.attack_eps), base["metrics"]["TA"]

        def row(r, target, weight, w_star):
            eps = log_epsilon(r, a.definition, a.class_set)
            layers = [n for n in eps if n in base_eps]
            x = 100 * float(np.mean([eps[n] - base_eps[n] for n in layers])) if layers else float("nan")
            acc = attack_accuracy(r, a.attack, a.attack_eps)
            return {"arch": arch, "seed": seed, "target": target, "label": r["label"], "weight": weight,
                    "multiplier": weight / w_star if w_star else float("nan"), "x": x, "y": acc - base_acc,
                    "clean": r["metrics"]["TA"] - base_ta, "attack_acc": acc, "TA": r["metrics"]["TA"],
                    "layers": len(layers)}
        for target in sorted({_hp(r)["target"] for r in group if r["method"] == METHOD}):
            anchor = next((r for r in group if r["label"] == calibrated_label(target)
                           and r["method"] == METHOD and _hp(r)["target"] == target), None)
            if anchor is None:
                continue
            w_star = float(_hp(anchor)["weight"])
            same = {k: v for k, v in _hp(anchor).items() if k != "weight"}
            grid = [r for r in group if r["method"] == METHOD
                    and {k: v for k, v in _hp(r).items() if k != "weight"} == same]
            rows.append(row(base, target, 0.0, w_star))
            rows += [row(r, target, float(_hp(r)["weight"]), w_star)
                     for r in sorted(grid, key=lambda r: float(_hp(r)["weight"]))]
    return pd.DataFrame(rows, columns=COLUMNS)


def fit_slope(x, y) -> float:
    """Least-squares slope of y on x; NaN with fewer than two distinct finite x."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(np.unique(x)) < 2:
        return float("nan")
    xc = x - x.mean()
    return float((xc * (y - y.mean())).sum() / (xc ** 2).sum())


def slopes(frame: pd.DataFrame, column: str = "y") -> pd.DataFrame:
    """Per (arch, target, seed): the least-squares slope of `column` (y: attack accuracy; clean: TA) on x over
    the grid, with the number of points and the range of x they span."""
    rows = []
    for (arch, target, seed), g in frame.groupby(["arch", "target", "seed"], sort=True):
        rows.append({"arch": arch, "target": target, "seed": seed, "slope": fit_slope(g.x, g[column]),
                     "points": int(len(g)), "x_min": float(g.x.min()), "x_max": float(g.x.max())})
    return pd.DataFrame(rows, columns=["arch", "target", "seed", "slope", "points", "x_min", "x_max"])


def slope_estimates(frame: pd.DataFrame, analysis: AnalysisConfig | None = None, column: str = "y") -> dict:
    """{(arch, target): stats.Estimate of the mean per-seed slope} (t-interval over the seeds, two-sided p)."""
    a = analysis or AnalysisConfig()
    per_seed = slopes(frame, column)
    return {(arch, target): stats.seed_interval(g.slope, a.level, a.min_seeds)
            for (arch, target), g in per_seed.groupby(["arch", "target"], sort=True)}


TARGET_COLORS = {"deviation": "#1f77b4", "spread": "#d62728"}


def figure(frame: pd.DataFrame, analysis: AnalysisConfig | None = None, width: float = 8.3):
    """x (change of eps against RL) against y (change of attack accuracy against RL): one panel per
    architecture, one colour per target, a marker per seed, each seed's least-squares line. Returns the figure."""
    import matplotlib.pyplot as plt  # lazy: matplotlib only when a figure is drawn

    from .plots import drawn  # lazy: plots imports matplotlib
    a = analysis or AnalysisConfig()
    archs = list(dict.fromkeys(frame.arch)) or ["(no runs)"]
    fig, axes = plt.subplots(1, len(archs), figsize=(width, 3.4), squeeze=False)
    markers = "osD^v<>"
    seeds = sorted(set(frame.seed))
    for ax, arch in zip(axes[0], archs):
        part = frame[frame.arch == arch]
        for target, g in part.groupby("target", sort=True):
            color = TARGET_COLORS.get(target, "#555555")
            for i, (seed, s) in enumerate(g.groupby("seed", sort=True)):
                s = s.sort_values("x")
                ax.scatter(drawn(s.x), drawn(s.y), color=color, marker=markers[seeds.index(seed) % len(markers)],
                           s=22, zorder=3, label=f"{target}, seed {seed}")
                slope = fit_slope(s.x, s.y)
                if math.isfinite(slope):
                    xs = np.array([s.x.min(), s.x.max()])
                    ax.plot(drawn(xs), drawn(s.y.mean() + slope * (xs - s.x.mean())), color=color, lw=1,
                            alpha=0.7)
        ax.axhline(0, color="#999999", lw=0.6)
        ax.axvline(0, color="#999999", lw=0.6)
        ax.set_title(arch)
        ax.set_xlabel("change of ε against RL (100·log ratio, layer mean)")
        ax.set_ylabel(f"{a.attack.upper()} {a.attack_eps:g}/255 accuracy − RL's (points)")
        if len(part):
            ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


__all__ = ["dose_frame", "slopes", "slope_estimates", "fit_slope", "figure", "log_epsilon", "attack_accuracy",
           "calibrated_label"]
