"""Results as tidy tables: load the JSON files of a profile and flatten them for plots.

Every notebook goes through here, so each number on a page comes from a result file.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..config import get_profile
from ..definitions import METRICS, avg_gap, epsilon
from ..files import load_json, results_dir
from ..files import load_records  # noqa: F401  (the notebooks' `report.load_records`)
from .stats import BOOTSTRAP_MIN_UNITS, bootstrap_ci, correlation, noise_floor  # noqa: F401  (report.*: the notebooks')

KEYS = ["arch", "seed", "scenario", "label"]


def metrics_frame(records) -> pd.DataFrame:
    """One row per model: its metrics, cost, and Avg. Gap to the Retrain of its (arch, seed, scenario)."""
    def measured(r):   # a metric that could not be measured (null in the file) is NaN, as in a frame
        return {k: float("nan") if r["metrics"][k] is None else r["metrics"][k] for k in METRICS}
    retrain = {(r["arch"], r["seed"], r["scenario"]): measured(r) for r in records if r["label"] == "retrain"}
    rows = []
    for r in records:
        s, key = r["stats"], (r["arch"], r["seed"], r["scenario"])
        rows.append({**{k: r[k] for k in KEYS}, "method": r["method"], **{k: r["metrics"][k] for k in METRICS},
                     "test_acc": r["metrics"]["test_acc_all"], "time_s": s["time_s"],
                     "trainable_params": s["trainable_params"], "total_params": s["total_params"],
                     "peak_memory_mb": s.get("peak_memory_mb"), "k": s["hyperparameters"].get("k"),
                     "avg_gap": avg_gap(measured(r), retrain[key]) if key in retrain else np.nan})
    return pd.DataFrame(rows)


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


def attacks_measured(att: pd.DataFrame) -> list[str]:
    """The attacks of an `attack_frame` run at some ε > 0 (a profile may run no PGD: cpu does not)."""
    return [a for a in ("fgsm", "pgd") if len(att) and ((att.attack == a) & (att.eps > 0)).any()]


def layer_thirds(rel_depth: float) -> str:
    return "early" if rel_depth < 1 / 3 else "intermediate" if rel_depth < 2 / 3 else "last"


# --------------------------------------------------------------------------- re-referenced tables

def analysis_of(records):
    """The AnalysisConfig declared in the profile that produced the records."""
    return get_profile(records[0]["profile"]).analysis


def is_replicate(label: str, method: str) -> bool:
    """A Retrain replicate (`retrain-r1`, ...): another training seed on the same split."""
    return method == "retrain" and label != "retrain"


def layer_frame(records, definition: str = "channel", class_set: str = "all", scenario: str = "class") -> pd.DataFrame:
    """One row per (model, layer): ε, its log-ratio to the model's own original and to the
    seed's Retrain (log ε − log ε_ref; NaN where an ε is not positive), and the layer's third."""
    eps = epsilon_frame([r for r in records if r["scenario"] == scenario], definition, class_set)
    if eps.empty:
        return eps
    eps["log_eps"] = np.log(eps.epsilon.where(eps.epsilon > 0))
    key = ["arch", "seed", "depth"]
    where = pd.MultiIndex.from_frame(eps[key])
    for ref in ("original", "retrain"):
        ref_log = eps[eps.label == ref].set_index(key).log_eps
        eps[f"log_vs_{ref}"] = eps.log_eps.to_numpy() - ref_log.reindex(where).to_numpy()
    eps["third"] = eps.rel_depth.map(layer_thirds)
    return eps


def _curve_distance(att: pd.DataFrame, attack: str) -> pd.Series:
    """Per model: mean over the attack's ε > 0 of |accuracy − the seed's Retrain's accuracy| (points)."""
    a = att[(att.attack == attack) & (att.eps > 0)]
    ref = a[a.label == "retrain"].set_index(["arch", "seed", "eps"]).accuracy
    diff = (a.accuracy.to_numpy() - ref.reindex(pd.MultiIndex.from_frame(a[["arch", "seed", "eps"]])).to_numpy())
    return a.assign(d=np.abs(diff)).groupby(["arch", "seed", "label"]).d.mean()


MODEL_KEYS = ["arch", "seed", "label"]


def model_frame(records, analysis, scenario: str = "class", definition: str | None = None, class_set: str | None = None,
                attack: str | None = None, attack_eps: float | None = None) -> pd.DataFrame:
    """One row per model of a scenario, every quantity the verdicts use (choices default to `analysis`).

    Per model: `log_eps` = mean over layers of log ε. Relative to the model's own original (same arch
    and seed): `d_own` = mean over layers of log(ε/ε_original), `dist_own` = mean |log(ε/ε_original)|,
    `rise_share` = share of layers whose ε rises, `concentration` = mean
    |log(ε/ε_original)| over the intermediate and last thirds minus over the early third,
    `adv_change` = headline adversarial accuracy minus the original's (points), `collapsed` =
    TA below `analysis.collapse_fraction` of the original's TA. Relative to the seed's Retrain:
    `d_retrain` = mean log(ε/ε_Retrain), `dist_retrain` = mean |log(ε/ε_Retrain)|,
    `fgsm_dist_retrain` / `pgd_dist_retrain` = mean |accuracy − Retrain's| over the attack's ε > 0.
    Robustness: `clean` (accuracy on the attacked images without attack), `adv` (headline attack
    and ε) and `drop` = clean − adv, in points.
    """
    definition = definition or analysis.definition
    class_set = class_set or analysis.class_set
    attack = attack or analysis.attack
    attack_eps = analysis.attack_eps if attack_eps is None else attack_eps
    recs = [r for r in records if r["scenario"] == scenario]
    if not recs:
        return pd.DataFrame(columns=MODEL_KEYS)
    m = metrics_frame(recs).drop(columns="scenario")
    lay = layer_frame(recs, definition, class_set, scenario)
    lay = lay.assign(abs_own=lay.log_vs_original.abs(), abs_retrain=lay.log_vs_retrain.abs(),
                     rise=(lay.log_vs_original > 0).astype(float).where(lay.log_vs_original.notna()))
    g = lay.groupby(MODEL_KEYS)
    later = lay[lay.third != "early"].groupby(MODEL_KEYS).abs_own.mean()
    early = lay[lay.third == "early"].groupby(MODEL_KEYS).abs_own.mean()
    means = g[["epsilon", "log_eps", "log_vs_original", "rise", "log_vs_retrain", "abs_retrain", "abs_own"]].mean()
    per_model = pd.DataFrame({
        "eps_mean": means.epsilon, "log_eps": means.log_eps, "d_own": means.log_vs_original,
        "dist_own": means.abs_own, "rise_share": means.rise,
        "d_retrain": means.log_vs_retrain, "dist_retrain": means.abs_retrain, "concentration": later - early,
    })
    att = attack_frame(recs)
    clean = att[(att.attack == "fgsm") & (att.eps == 0)].set_index(MODEL_KEYS).accuracy.rename("clean")
    adv = att[(att.attack == attack) & np.isclose(att.eps, attack_eps)].set_index(MODEL_KEYS).accuracy.rename("adv")
    df = (m.set_index(MODEL_KEYS).join(per_model).join(clean).join(adv)
          .join(_curve_distance(att, "fgsm").rename("fgsm_dist_retrain"))
          .join(_curve_distance(att, "pgd").rename("pgd_dist_retrain")).reset_index())
    df["drop"] = df.clean - df.adv
    orig = df[df.label == "original"].set_index(["arch", "seed"])
    at = pd.MultiIndex.from_frame(df[["arch", "seed"]])
    df["adv_change"] = df.adv.to_numpy() - orig.adv.reindex(at).to_numpy()
    df["collapsed"] = df.TA.to_numpy() < analysis.collapse_fraction * orig.TA.reindex(at).to_numpy()
    df["replicate"] = [is_replicate(lbl, mth) for lbl, mth in zip(df.label, df.method)]
    return df


def layer_noise_floor(layers: pd.DataFrame, min_retrains: int = 3, scenario: str = "class",
                      bound: float = 0.95) -> pd.DataFrame:
    """Per (arch, depth): the noise floor of log ε between two Retrains at that layer (`stats.noise_floor`,
    at its lower confidence bound), pooled as `noise_floors` pools (class-wise: every Retrain; random:
    within a seed); NaN below `min_retrains` Retrains."""
    rows = []
    for (arch, depth), g in layers[layers.method == "retrain"].groupby(["arch", "depth"]):
        groups = np.zeros(len(g)) if scenario == "class" else g.seed.to_numpy()
        n = len(g) if scenario == "class" else int(g.groupby("seed").size().max())
        rows.append({"arch": arch, "depth": depth, "n_retrains": n,
                     "floor": noise_floor(g.log_eps, groups, bound) if n >= min_retrains else float("nan")})
    return pd.DataFrame(rows, columns=["arch", "depth", "n_retrains", "floor"])


def k_sweep_frame(records, analysis) -> pd.DataFrame:
    """CF-k and EU-k at every k run, with FT and Retrain for reference (class-wise): the model
    frame plus `own_change` (100·d_own) and `param_share` (% of parameters trained)."""
    f = model_frame(records, analysis, "class")
    d = f[f.method.isin(["cf_k", "eu_k"]) | f.label.isin(["ft", "retrain"])].copy()
    d["own_change"] = 100 * d.d_own
    d["param_share"] = 100 * d.trainable_params / d.total_params
    return d


def k_unit(records) -> str:
    """What k counts in these results: Conv/Linear layers (Goel et al.), or blocks in older results."""
    logs = [r["stats"].get("logs", {}) for r in records if r["method"] in ("cf_k", "eu_k")]
    blocks = any("blocks_total" in lg and "layers_total" not in lg for lg in logs)
    return "k (last blocks trained)" if blocks else "k (last Conv/Linear layers trained)"


VS_RETRAIN_ABS = ("dist_retrain", "fgsm_dist_retrain", "pgd_dist_retrain")
# How each quantity's noise floor is estimated (book/analysis_plan.md). A difference against a per-seed
# reference (the own original, the seed's Retrain) has the floor of the per-model quantity itself: the
# reference cancels in a difference. A quantity that is not such a difference is compared only between
# Retrains of one original (one seed).
FLOOR_OF = {"d_own": "log_eps", "d_retrain": "log_eps", "adv_change": "adv"}
WITHIN_SEED = ("concentration", *VS_RETRAIN_ABS)
DECLARED = "declared"


def noise_floors(frame: pd.DataFrame, columns, analysis, scenario: str = "class") -> pd.DataFrame:
    """Per architecture: the Retrain-vs-Retrain noise floor δ of each column (`stats.noise_floor`, at the
    lower confidence bound `analysis.floor_bound`), with `n:<column>` the Retrains behind it.

    Pooled over every Retrain that shares a split: class-wise all of them (every seed has the same
    split), random only those of one seed. Columns of WITHIN_SEED pool only within a seed; for distances
    to the seed's Retrain that Retrain itself is left out (its distance is 0 by construction). UA and
    MIA class-wise are 100 for every Retrain: their margins are declared (`analysis.margin_ua_class`,
    `margin_mia_class`; n = -1).
    Fewer than `analysis.min_seeds` Retrains behind a floor: NaN ("no noise floor").
    """
    rows = {}
    for arch, g in frame[frame.method == "retrain"].groupby("arch"):
        row = {}
        for c in columns:
            if c in ("UA", "MIA") and scenario == "class":    # 100 for every Retrain: a declared margin
                row[c], row[f"n:{c}"] = analysis.margin_ua_class if c == "UA" else analysis.margin_mia_class, -1
                continue
            d = g[g.label != "retrain"] if c in VS_RETRAIN_ABS else g
            groups = d.seed.to_numpy() if (c in WITHIN_SEED or scenario != "class") else np.zeros(len(d))
            values = d[FLOOR_OF.get(c, c)].to_numpy(dtype=float)
            sizes = pd.Series(groups[np.isfinite(values)]).value_counts()
            n = int(sizes[sizes > 1].sum())
            row[c] = noise_floor(values, groups, analysis.floor_bound) if n >= analysis.min_seeds else float("nan")
            row[f"n:{c}"] = n
        rows[arch] = row
    cols = [x for c in columns for x in (c, f"n:{c}")]
    return pd.DataFrame.from_dict(rows, orient="index", columns=cols)


def mean_std(df: pd.DataFrame, by: list, value: str) -> pd.DataFrame:
    """Mean, standard deviation and count over seeds."""
    return df.groupby(by, sort=False)[value].agg(["mean", "std", "count"]).reset_index()


def compute_seconds(records) -> tuple[float, float]:
    """(training and unlearning, measurement): the seconds the result files record. An original is trained once
    per (architecture, seed) and both scenarios' files record that training: it is counted once."""
    train = sum((r.get("stats", {}).get("time_s") or 0) for r in records if r["label"] != "original")
    train += sum({(r["arch"], r["seed"]): r.get("stats", {}).get("time_s") or 0
                  for r in records if r["label"] == "original"}.values())
    return train, sum(r.get("eval_time_s") or 0 for r in records)


def provenance(records) -> pd.DataFrame:
    """Profile, data, seeds, hardware, versions and compute time, read from the result files."""
    p = records[0]["provenance"]
    hw = sorted({r["provenance"]["hardware"] for r in records})
    train_time, measure_time = compute_seconds(records)
    rows = {
        "profile": records[0]["profile"],
        "data": sorted({r["data_source"] for r in records})[0],
        "architectures": ", ".join(sorted({r["arch"] for r in records})),
        "seeds": (f"{len({r['seed'] for r in records})} "
                  f"({', '.join(str(s) for s in sorted({r['seed'] for r in records}))})"),
        "scenarios": ", ".join(sorted({r["scenario"] for r in records})),
        "images (forget / retain / test, class-wise)": next(
            (f"{r['sizes']['forget']} / {r['sizes']['retain']} / {r['sizes']['test']}" for r in records
             if r["scenario"] == "class"), "-"),
        "models measured": len(records),
        "hardware": "; ".join(hw),
        "versions": f"python {p['python']}, torch {p['torch']}, torchvision {p['torchvision']}, numpy {p['numpy']}",
        "compute time (training + unlearning)": f"{train_time / 60:.1f} min",
        "measurement time": f"{measure_time / 60:.1f} min",
        "computed": (f"{min(r['provenance']['date'] for r in records)} "
                     f"to {max(r['provenance']['date'] for r in records)}"),
    }
    return pd.DataFrame({"": list(rows.values())}, index=list(rows.keys()))


def grid_frame(profile_name: str, results=None) -> pd.DataFrame:
    """One row per grid point of every learning-rate search of a profile (`tune`'s outcomes under
    results/<profile>/tuning/): arch, scenario, seed, method, lr, Avg. Gap and its metrics, chosen."""
    rows = []
    for path in sorted((results_dir(results) / profile_name / "tuning").glob("*/*.json")):
        o = load_json(path)
        if o is None or "methods" not in o:   # KeepGap's calibration (keep_gap.json) has targets, not methods
            continue
        for method, entry in o["methods"].items():
            for p in entry["points"]:
                rows.append({"arch": o["arch"], "scenario": o["scenario"], "seed": o["seed"], "method": method,
                             "lr": p["lr"], "avg_gap": p["avg_gap"], **{k: p[k] for k in METRICS},
                             "chosen": p["lr"] == entry["lr"]})
    return pd.DataFrame(rows, columns=["arch", "scenario", "seed", "method", "lr", "avg_gap", *METRICS, "chosen"])


def rates_used(records, method: str, grid) -> pd.DataFrame:
    """Per (arch, scenario): the rate behind a method's results and the rate `tune` chose."""
    used = pd.DataFrame([{"arch": r["arch"], "scenario": r["scenario"], "lr used": r["stats"]["hyperparameters"]["lr"]}
                         for r in records if r["label"] == method], columns=["arch", "scenario", "lr used"])
    used = used.drop_duplicates().set_index(["arch", "scenario"])
    chosen = grid[(grid.method == method) & grid.chosen].set_index(["arch", "scenario"])["lr"]
    return used.join(chosen.rename("lr chosen by tune"), how="outer")
