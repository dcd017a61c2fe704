"""A verdict per claim of the paper, computed from the result files (never typed in).

Conventions (each a parameter): the fairness-gap of a model is its mean epsilon over all
normalization layers (`layer_mean_epsilon`), sigma definition `channel`, all classes;
robustness is FGSM accuracy at `ref_eps`/255 on the remaining test classes; intervals are
95% percentile bootstraps over the (architecture, seed, method) units. A claim is
*supported* when the interval excludes zero in the claimed direction for every
architecture, *not supported* when it does so for none, and *mixed* otherwise.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .report import attack_frame, bootstrap_ci, correlation, epsilon_frame, layer_thirds, metrics_frame

APPROXIMATE = ("rl", "salun", "scrub")   # the methods the paper says raise the gap
KEEPERS = ("cf_k", "bs")                 # the methods it says keep gap and robustness

# SalUn (Fan et al., ICLR 2024), Table 1: random 10% forgetting, ResNet-18, CIFAR-10, mean of 10 trials.
SALUN_TABLE1 = {
    "retrain": (5.24, 100.00, 94.26, 12.88, 0.00), "ft": (0.63, 99.88, 94.06, 2.70, 3.78),
    "rl": (7.61, 99.67, 92.83, 37.36, 7.15), "ga": (0.69, 99.50, 94.01, 1.70, 4.12),
    "bs": (1.78, 98.29, 92.69, 8.96, 2.67), "l1_sparse": (4.19, 97.74, 91.59, 9.84, 2.26),
    "salun": (2.85, 99.62, 93.93, 14.39, 1.15),
}


def layer_mean_epsilon(records, definition="channel", class_set="all", scenario="class") -> pd.DataFrame:
    eps = epsilon_frame([r for r in records if r["scenario"] == scenario], definition, class_set)
    return eps.groupby(["arch", "seed", "label", "method"], as_index=False)["epsilon"].mean()


def _versus_retrain(df: pd.DataFrame, value: str) -> pd.DataFrame:
    ref = df[df.label == "retrain"].set_index(["arch", "seed"])[value]
    out = df[~df.label.isin(["retrain", "original"])].copy()
    out["retrain"] = [ref.get((a, s), np.nan) for a, s in zip(out.arch, out.seed)]
    out["delta"] = out[value] - out["retrain"]
    out["rel_delta"] = 100 * out["delta"] / out["retrain"]
    return out


def _verdict(per_arch_ci: dict, positive: bool = True) -> str:
    hits = [(lo > 0) if positive else (hi < 0) for lo, hi in per_arch_ci.values()]
    return "supported" if all(hits) else "not supported" if not any(hits) else "mixed"


def _effect(values) -> dict:
    lo, hi = bootstrap_ci(values)
    return {"mean": float(np.mean(values)) if len(values) else float("nan"), "lo": lo, "hi": hi, "n": len(values)}


def claim_c1(records, **kw) -> dict:
    """C1: RL, SalUn and SCRUB raise the fairness-gap over Retrain (relative change of layer-mean eps)."""
    d = _versus_retrain(layer_mean_epsilon(records, **kw), "epsilon")
    d = d[d.method.isin(APPROXIMATE)]
    per_arch = {a: _effect(g.rel_delta.to_numpy()) for a, g in d.groupby("arch")}
    return {"claim": "C1", "statement": "RL, SalUn and SCRUB raise the fairness-gap over Retrain",
            "effect": "relative change of layer-mean ε vs Retrain (%)", "overall": _effect(d.rel_delta.to_numpy()),
            "per_arch": per_arch, "verdict": _verdict({a: (e["lo"], e["hi"]) for a, e in per_arch.items()}),
            "figure": "methods/* (ε per layer), 03_layer_analysis (heatmap)"}


def robustness(records, ref_eps=2, attack="fgsm", scenario="class") -> pd.DataFrame:
    att = attack_frame([r for r in records if r["scenario"] == scenario])
    return att[(att.attack == attack) & (att.eps == ref_eps)][["arch", "seed", "label", "method", "accuracy"]]


def _mean_within_correlation(groups, method, n_boot=1000, seed=0) -> dict:
    """Mean of per-group correlations, bootstrapped by resampling points within each group."""
    rng = np.random.default_rng(seed)

    def mean_r(resample):
        rs = []
        for x, y in groups:
            idx = rng.integers(0, len(x), len(x)) if resample else np.arange(len(x))
            rs.append(correlation(x[idx], y[idx], method, n_boot=0)["r"])
        return float(np.nanmean(rs))
    boots = [mean_r(True) for _ in range(n_boot)]
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return {"r": mean_r(False), "lo": float(lo), "hi": float(hi), "n": int(sum(len(x) for x, _ in groups))}


def claim_c2(records, ref_eps=2, method="spearman", **kw) -> dict:
    """C2: across models, a higher fairness-gap goes with lower accuracy under FGSM."""
    eps = layer_mean_epsilon(records, **kw)
    rob = robustness(records, ref_eps)
    d = eps.merge(rob, on=["arch", "seed", "label", "method"])
    per_arch = {a: correlation(g.epsilon, g.accuracy, method) for a, g in d.groupby("arch")}
    return {"claim": "C2", "statement": "a higher fairness-gap goes with lower adversarial accuracy",
            "effect": f"{method} r between layer-mean ε and FGSM accuracy at {ref_eps}/255 "
                      "(overall: mean of the per-architecture r)",
            "overall": _mean_within_correlation([(g.epsilon.to_numpy(), g.accuracy.to_numpy())
                                                 for _, g in d.groupby("arch")], method),
            "per_arch": per_arch,
            "verdict": _verdict({a: (p["lo"], p["hi"]) for a, p in per_arch.items()}, positive=False),
            "figure": "04_correlation (scatter)"}


def layer_deviation(records, definition="channel", class_set="all", scenario="class") -> pd.DataFrame:
    """|eps_method - eps_Retrain| / eps_Retrain per layer, with the layer's third of the depth."""
    eps = epsilon_frame([r for r in records if r["scenario"] == scenario], definition, class_set)
    ref = eps[eps.label == "retrain"].set_index(["arch", "seed", "depth"]).epsilon
    d = eps[~eps.label.isin(["retrain", "original"])].copy()
    d["retrain"] = [ref.get((a, s, l), np.nan) for a, s, l in zip(d.arch, d.seed, d.depth)]
    d["delta"] = d.epsilon - d.retrain
    d["rel_abs_dev"] = 100 * d.delta.abs() / d.retrain
    d["third"] = d.rel_depth.map(layer_thirds)
    return d


def claim_c3(records, **kw) -> dict:
    """C3: the fairness-gap moves most in the intermediate and last layers."""
    d = layer_deviation(records, **kw)
    unit = d.groupby(["arch", "seed", "label", d.third.eq("early").map({True: "early", False: "later"})]
                     ).rel_abs_dev.mean().unstack()
    unit["diff"] = unit["later"] - unit["early"]
    unit = unit.reset_index()
    per_arch = {a: _effect(g["diff"].to_numpy()) for a, g in unit.groupby("arch")}
    return {"claim": "C3", "statement": "the instability sits in intermediate and last layers",
            "effect": "mean |Δε|/ε_Retrain (%) in intermediate+last thirds minus in the early third",
            "overall": _effect(unit["diff"].to_numpy()), "per_arch": per_arch,
            "verdict": _verdict({a: (e["lo"], e["hi"]) for a, e in per_arch.items()}),
            "figure": "03_layer_analysis (heatmap, thirds)"}


def claim_c4(records, ref_eps=2, **kw) -> dict:
    """C4: CF-k and BS stay closer to Retrain in gap and robustness than RL/SalUn/SCRUB."""
    eps = _versus_retrain(layer_mean_epsilon(records, **kw), "epsilon")
    rob = _versus_retrain(robustness(records, ref_eps), "accuracy")
    out, per_arch = {}, {}
    for name, d, col in (("gap", eps, "rel_delta"), ("robustness", rob, "delta")):
        d = d.assign(dev=d[col].abs())
        diffs = []
        for (arch, seed), g in d.groupby(["arch", "seed"]):
            approx, keep = g[g.method.isin(APPROXIMATE)].dev.mean(), g[g.label.isin(KEEPERS)].dev.mean()
            diffs.append((arch, approx - keep))
        diffs = pd.DataFrame(diffs, columns=["arch", "diff"])
        out[name] = _effect(diffs["diff"].to_numpy())
        per_arch[name] = {a: _effect(g["diff"].to_numpy()) for a, g in diffs.groupby("arch")}
    both = {a: (min(per_arch["gap"][a]["lo"], per_arch["robustness"][a]["lo"]), np.inf) for a in per_arch["gap"]}
    return {"claim": "C4", "statement": "CF and BS keep the fairness-gap and the robustness of Retrain",
            "effect": "(RL/SalUn/SCRUB) minus (CF-k/BS): |Δε| vs Retrain (%), and |Δ FGSM acc| (points)",
            "overall": out["gap"], "overall_robustness": out["robustness"], "per_arch": per_arch["gap"],
            "per_arch_robustness": per_arch["robustness"], "verdict": _verdict(both),
            "figure": "methods/cf_k, methods/bs, 04_correlation"}


def claim_c5(records, tolerance=5.0) -> dict:
    """C5: unlearning only the last blocks (CF-k / EU-k) suffices and is cheaper than FT/Retrain."""
    m = metrics_frame([r for r in records if r["scenario"] == "class"])
    ref = m[m.label == "retrain"].set_index(["arch", "seed"])
    ft = m[m.label == "ft"].set_index(["arch", "seed"])
    rows = []
    for _, r in m[m.method.isin(["cf_k", "eu_k"])].iterrows():
        key = (r.arch, r.seed)
        rows.append({"arch": r.arch, "seed": r.seed, "label": r.label, "k": r.k,
                     "ua_gap": abs(r.UA - ref.loc[key, "UA"]), "ta_gap": abs(r.TA - ref.loc[key, "TA"]),
                     "time_vs_ft": r.time_s / ft.loc[key, "time_s"] if key in ft.index else np.nan,
                     "time_vs_retrain": r.time_s / ref.loc[key, "time_s"],
                     "param_share": r.trainable_params / r.total_params})
    d = pd.DataFrame(rows)
    best = d.assign(score=d.ua_gap + d.ta_gap).sort_values("score").groupby(["arch", "seed"]).head(1)
    per_arch = {}
    for a, g in best.groupby("arch"):
        per_arch[a] = {"ua_gap": _effect(g.ua_gap.to_numpy()), "ta_gap": _effect(g.ta_gap.to_numpy()),
                       "time_vs_ft": _effect(g.time_vs_ft.to_numpy()), "labels": sorted(set(g.label))}
    ok = {a: (p["ua_gap"]["mean"] <= tolerance and p["ta_gap"]["mean"] <= tolerance,
              p["time_vs_ft"]["mean"] < 1) for a, p in per_arch.items()}
    verdict = ("supported" if all(all(v) for v in ok.values()) else
               "not supported" if not any(any(v) for v in ok.values()) else "mixed")
    return {"claim": "C5", "statement": "unlearning only the last layers suffices and is cheaper",
            "effect": f"best CF-k/EU-k: |UA − UA_Retrain|, |TA − TA_Retrain| (points, suffices if ≤ {tolerance}); "
                      "time relative to FT", "overall": _effect(best.ua_gap.to_numpy()),
            "per_arch": per_arch, "checks": ok, "table": d, "verdict": verdict,
            "figure": "03_layer_analysis (k sweep)"}


def all_claims(records, **kw) -> list[dict]:
    return [claim_c1(records), claim_c2(records), claim_c3(records), claim_c4(records), claim_c5(records)]


def scorecard(claims) -> pd.DataFrame:
    rows = []
    for c in claims:
        e = c["overall"]
        rows.append({"claim": c["claim"], "statement": c["statement"], "verdict": c["verdict"],
                     "effect size": f"{e.get('mean', e.get('r')):+.2f} [{e['lo']:+.2f}, {e['hi']:+.2f}]",
                     "measured as": c["effect"], "figure": c["figure"]})
    return pd.DataFrame(rows).set_index("claim")


def salun_table(records) -> pd.DataFrame:
    """Random-forgetting results in SalUn's Table 1 format (mean ± std over seeds), beside the published ones."""
    m = metrics_frame([r for r in records if r["scenario"] == "random"])
    rows = []
    for (arch, label), g in m[m.label != "original"].groupby(["arch", "label"], sort=False):
        cells = {c: f"{g[c].mean():.2f} ± {g[c].std():.2f}" if len(g) > 1 else f"{g[c].mean():.2f}"
                 for c in ("UA", "RA", "TA", "MIA", "avg_gap")}
        pub = SALUN_TABLE1.get(label)
        rows.append({"arch": arch, "method": label, **cells,
                     "published (UA, RA, TA, MIA, Gap)": ", ".join(f"{v:.2f}" for v in pub) if pub else "—"})
    return pd.DataFrame(rows).set_index(["arch", "method"])
