"""Results as tidy tables: load the JSON files of a profile and flatten them for plots.

Every notebook goes through here, so each number on a page comes from a result file.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..artifacts import load_records  # noqa: F401  (the notebooks' `report.load_records`)
from ..fairness import epsilon
from ..metrics import METRICS, avg_gap

KEYS = ["arch", "seed", "scenario", "label"]


def metrics_frame(records) -> pd.DataFrame:
    rows = []
    for r in records:
        s = r["stats"]
        rows.append({**{k: r[k] for k in KEYS}, "method": r["method"], **{k: r["metrics"][k] for k in METRICS},
                     "test_acc": r["metrics"]["test_acc_all"], "time_s": s["time_s"],
                     "trainable_params": s["trainable_params"], "total_params": s["total_params"],
                     "peak_memory_mb": s.get("peak_memory_mb"), "k": s["hyperparameters"].get("k")})
    df = pd.DataFrame(rows)
    retrain = df[df.label == "retrain"].set_index(["arch", "seed", "scenario"])
    gaps = []
    for _, row in df.iterrows():
        key = (row.arch, row.seed, row.scenario)
        gaps.append(avg_gap(row, retrain.loc[key]) if key in retrain.index else np.nan)
    df["avg_gap"] = gaps
    return df


def epsilon_frame(records, definition: str = "channel", class_set: str = "all") -> pd.DataFrame:
    """One row per (model, layer): epsilon under a sigma definition and class set."""
    rows = []
    for r in records:
        n = len(r["fairness"])
        for L in r["fairness"]:
            rows.append({**{k: r[k] for k in KEYS}, "method": r["method"], "layer": L["layer"], "depth": L["depth"],
                         "rel_depth": L["depth"] / max(n - 1, 1), "kind": L["kind"],
                         "epsilon": epsilon(L["sigma"][definition], class_set, r["forget_class"])})
    return pd.DataFrame(rows)


def sigma_frame(records, definition: str = "channel") -> pd.DataFrame:
    """One row per (model, layer, class): sigma_c."""
    rows = []
    for r in records:
        for L in r["fairness"]:
            for c, v in enumerate(L["sigma"][definition]):
                rows.append({**{k: r[k] for k in KEYS}, "layer": L["layer"], "depth": L["depth"],
                             "class": r["classes"][c], "class_index": c, "sigma": v})
    return pd.DataFrame(rows)


def attack_frame(records) -> pd.DataFrame:
    """One row per (model, attack, eps): accuracy in %; eps in units of 1/255."""
    rows = []
    for r in records:
        for attack, curve in r["attacks"].items():
            for eps, acc in curve.items():
                rows.append({**{k: r[k] for k in KEYS}, "method": r["method"], "attack": attack,
                             "eps": round(float(eps) * 255, 3), "accuracy": acc})
    return pd.DataFrame(rows).sort_values(KEYS + ["attack", "eps"])


def layer_thirds(rel_depth: float) -> str:
    return "early" if rel_depth < 1 / 3 else "intermediate" if rel_depth < 2 / 3 else "last"


def mean_std(df: pd.DataFrame, by: list, value: str) -> pd.DataFrame:
    """Mean, standard deviation and count over seeds."""
    return df.groupby(by, sort=False)[value].agg(["mean", "std", "count"]).reset_index()


def provenance(records) -> pd.DataFrame:
    """Profile, data, seeds, hardware, versions and compute time, read from the result files."""
    p = records[0]["provenance"]
    hw = sorted({r["provenance"]["hardware"] for r in records})
    train_time = sum(r["stats"]["time_s"] for r in records if r["label"] != "original")
    train_time += sum({(r["arch"], r["seed"]): r["stats"]["time_s"] for r in records if r["label"] == "original"}.values())
    rows = {
        "profile": records[0]["profile"],
        "data": sorted({r["data_source"] for r in records})[0],
        "architectures": ", ".join(sorted({r["arch"] for r in records})),
        "seeds": f"{len({r['seed'] for r in records})} ({', '.join(str(s) for s in sorted({r['seed'] for r in records}))})",
        "scenarios": ", ".join(sorted({r["scenario"] for r in records})),
        "images (forget / retain / test, class-wise)": next(
            (f"{r['sizes']['forget']} / {r['sizes']['retain']} / {r['sizes']['test']}" for r in records
             if r["scenario"] == "class"), "-"),
        "models measured": len(records),
        "hardware": "; ".join(hw),
        "versions": f"python {p['python']}, torch {p['torch']}, torchvision {p['torchvision']}, numpy {p['numpy']}",
        "compute time (training + unlearning)": f"{train_time / 60:.1f} min",
        "measurement time": f"{sum(r['eval_time_s'] for r in records) / 60:.1f} min",
        "computed": f"{min(r['provenance']['date'] for r in records)} to {max(r['provenance']['date'] for r in records)}",
    }
    return pd.DataFrame({"": list(rows.values())}, index=list(rows.keys()))


def bootstrap_ci(values, stat=np.mean, n: int = 2000, seed: int = 0, level: float = 0.95):
    """Percentile bootstrap interval of `stat` over the first axis of `values`."""
    values = np.asarray(values)
    if len(values) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    stats = [stat(values[rng.integers(0, len(values), len(values))]) for _ in range(n)]
    lo, hi = np.nanpercentile(stats, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def correlation(x, y, method: str = "spearman", n_boot: int = 2000, seed: int = 0) -> dict:
    """Pearson or Spearman r with a bootstrap 95% interval over the points."""
    x, y = np.asarray(x, float), np.asarray(y, float)

    def r(idx):
        a, b = x[idx], y[idx]
        if method == "spearman":
            a, b = pd.Series(a).rank().to_numpy(), pd.Series(b).rank().to_numpy()
        if a.std() == 0 or b.std() == 0:
            return np.nan
        return float(np.corrcoef(a, b)[0, 1])
    idx = np.arange(len(x))
    lo, hi = bootstrap_ci(idx, stat=r, n=n_boot, seed=seed) if n_boot else (float("nan"), float("nan"))
    return {"r": r(idx), "lo": lo, "hi": hi, "n": len(x)}
