"""A verdict per claim of the paper, computed from the result files (never typed in).

The choices are the profile's `AnalysisConfig`, declared before any result is read: σ
definition and class set of the fairness-gap, headline attack and ε, the k of C5, the
collapse threshold, the fewest seeds behind an interval, the confidence level. The
statistics are those of `stats`: one effect per seed (models of a seed share an original
and a Retrain), a t-interval over seeds, and a four-way verdict whose equivalence margin
is the Retrain-vs-Retrain noise floor of the same quantity.

Every change of ε is taken against the model's own original, as a log-ratio
log(ε_method / ε_original) per layer, averaged over layers and shown ×100 (≈ %): a
method that leaves a layer untouched scores 0 there, whatever the spread between
independently trained originals and Retrains. The distance to Retrain is reported
beside it and judged against the noise floor.

- **C1** RL, SalUn and SCRUB raise the fairness-gap: their mean own-original change of ε.
- **C2** a higher gap goes with more vulnerability: within-seed Spearman ρ between
  the layer-mean ε and the drop under attack (clean − adversarial accuracy), collapsed
  models left out; adversarial accuracy and the partial correlation given clean accuracy
  as the two other measures. No margin is defined for a correlation (three-way verdict).
- **C3** the change sits in the intermediate and last layers: mean |log-ratio| in the
  intermediate+last thirds minus the early third, for RL/SalUn/SCRUB minus the same for
  FT (the control for change that merely propagates downstream); CF-k/EU-k left out.
- **C4** CF-k and BS keep gap and robustness: RL/SalUn/SCRUB minus CF-k/BS in
  |own-original change of ε| and in |change of headline adversarial accuracy|; both parts
  must agree (`stats.combine`).
- **C5** the last layers suffice and are cheaper: CF-k at `c5_k` against Retrain in TA
  (and UA where it is not 100 for every method) by equivalence within the noise floor, and
  cheaper than FT by the median time over seeds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import report
from .stats import (Estimate, combine, equivalence, fisher_interval, holm, overall, partial_spearman, seed_interval,
                    seeds_needed, signed, spearman, verdict)

APPROXIMATE = ("rl", "salun", "scrub")   # the methods the paper says raise the gap
KEEPERS = ("cf_k", "bs")                 # the methods it says keep gap and robustness (CF-k at its default k)
CONTROL = "ft"                           # C3's control: fine-tuning on D_r, no forgetting objective
LAST_LAYERS_ONLY = ("cf_k", "eu_k")      # early layers untouched by construction: left out of C3
NEW_METHOD, NEW_METHOD_BASE = "keep_gap", "rl"   # beyond the paper: RL plus a fairness-gap penalty
NAMES = {"rl": "RL", "salun": "SalUn", "scrub": "SCRUB", "cf_k": "CF-k", "eu_k": "EU-k", "bs": "BS", "ft": "FT",
         "ga": "GA", "l1_sparse": "ℓ1-sparse", "retrain": "Retrain", "original": "Original", "keep_gap": "KeepGap"}

# SalUn (Fan et al., ICLR 2024), Table 1: random 10% forgetting, ResNet-18, CIFAR-10, mean of 10 trials.
SALUN_TABLE1 = {
    "retrain": (5.24, 100.00, 94.26, 12.88, 0.00), "ft": (0.63, 99.88, 94.06, 2.70, 3.78),
    "rl": (7.61, 99.67, 92.83, 37.36, 7.15), "ga": (0.69, 99.50, 94.01, 1.70, 4.12),
    "bs": (1.78, 98.29, 92.69, 8.96, 2.67), "l1_sparse": (4.19, 97.74, 91.59, 9.84, 2.26),
    "salun": (2.85, 99.62, 93.93, 14.39, 1.15),
}


def name(label: str) -> str:
    method, _, variant = label.partition("-")
    return NAMES.get(method, method) + (f" ({variant})" if variant else "")


# --------------------------------------------------------------------------- containers

@dataclass(frozen=True)
class ArchVerdict:
    """One part of a claim on one architecture: effect over seeds, margin, verdict."""
    estimate: Estimate
    margin: float          # the equivalence margin δ (NaN: none)
    n_retrains: int        # Retrains behind the margin
    verdict: str
    reason: str
    margin_note: str = "no noise floor"   # what to say when there is no margin

    def margin_text(self, digits: int = 2) -> str:
        if not math.isfinite(self.margin):
            return self.margin_note
        return f"±{self.margin:.{digits}f} ({self.n_retrains} Retrains)"


@dataclass
class Part:
    """What a verdict rests on: one effect, its unit and claimed direction, per architecture."""
    name: str
    measured_as: str
    unit: str
    direction: int          # +1: the claim says the effect is > 0; −1: < 0; 0: a claim of equivalence
    per_arch: dict[str, ArchVerdict]


@dataclass
class Claim:
    claim: str
    statement: str
    parts: list[Part]
    verdicts: dict[str, str]          # per architecture, the parts combined
    rule: str                         # how the verdict follows from the parts
    detail: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    figure: str = ""

    @property
    def overall(self) -> str:
        return overall(self.verdicts)


# --------------------------------------------------------------------------- helpers

def _archs(frame: pd.DataFrame) -> list[str]:
    return sorted(frame.arch.unique()) if len(frame) else []


def _floors(frame: pd.DataFrame, columns, analysis) -> pd.DataFrame:
    floors = report.noise_floors(frame, columns, analysis.min_seeds)
    return floors.reindex(_archs(frame)).fillna({"n_retrains": 0})


def _group_mean(frame: pd.DataFrame, labels, column: str, absolute: bool = False) -> pd.Series:
    """Per (arch, seed): the mean of `column` over the models `labels` (a seed missing one of them is left out)."""
    d = frame[frame.label.isin(labels)]
    v = d[column].abs() if absolute else d[column]
    g = d.assign(v=v).groupby(["arch", "seed"]).v
    mean, count = g.mean(), g.count()
    return mean[count == len(set(labels))]


def _by_arch(per_seed: pd.Series, archs) -> dict[str, np.ndarray]:
    return {a: (per_seed.xs(a, level="arch").to_numpy() if a in per_seed.index.get_level_values("arch") else
                np.array([])) for a in archs}


def _judge(per_seed: pd.Series, archs, analysis, direction: int, margins=None, n_retrains=None,
           fisher: bool = False, margin_note: str = "no noise floor") -> dict[str, ArchVerdict]:
    out = {}
    for arch, values in _by_arch(per_seed, archs).items():
        est = (fisher_interval if fisher else seed_interval)(values, analysis.level, analysis.min_seeds)
        margin = float(margins.get(arch, np.nan)) if margins is not None else float("nan")
        n = int(n_retrains.get(arch, 0)) if n_retrains is not None else 0
        v, why = (equivalence(est, margin) if direction == 0 else
                  verdict(est, direction, margin, "" if margin_note != "no noise floor" else
                          "; no noise floor, so no equivalence test"))
        out[arch] = ArchVerdict(est, margin, n, v, why, margin_note)
    return out


def versus_floor(est: Estimate, margin: float) -> str:
    """Where an interval of a distance to Retrain lies against the noise floor ±margin."""
    if not est.has_interval:
        return est.seeds_text
    if not math.isfinite(margin):
        return "no noise floor"
    if -margin < est.lo and est.hi < margin:
        return "within the noise floor"
    if est.lo > margin or est.hi < -margin:
        return "beyond the noise floor"
    return "undetermined"


def _default_labels(frame: pd.DataFrame, exclude=("original", "retrain")) -> list[str]:
    """The default run of every method (label == method), in the order of the frame."""
    return [lbl for lbl in dict.fromkeys(frame.label) if lbl in set(frame.method) and lbl not in exclude]


def _est(values, analysis) -> Estimate:
    return seed_interval(values, analysis.level, analysis.min_seeds)


def layer_mean_epsilon(records, definition="channel", class_set="all", scenario="class") -> pd.DataFrame:
    """Per model: ε averaged over all normalization layers (for scatter plots and explorers)."""
    eps = report.epsilon_frame([r for r in records if r["scenario"] == scenario], definition, class_set)
    return eps.groupby(["arch", "seed", "label", "method"], as_index=False)["epsilon"].mean()


# --------------------------------------------------------------------------- C1

def own_change_table(frame: pd.DataFrame, analysis, floors: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per architecture and method: change of ε from its own original, share of layers that
    rise, and the distance to Retrain against the noise floor (log-ratios ×100, seed intervals)."""
    floors = _floors(frame, ["d_own", "d_retrain"], analysis) if floors is None else floors
    rows = []
    for arch in _archs(frame):
        fl = floors.loc[arch] if arch in floors.index else pd.Series(dtype=float)
        for label in _default_labels(frame[frame.arch == arch]):
            g = frame[(frame.arch == arch) & (frame.label == label)]
            own, rise, vs = (_est(100 * g.d_own, analysis), _est(100 * g.rise_share, analysis).clip(0, 100),
                             _est(100 * g.d_retrain, analysis))
            margin = 100 * fl.get("d_retrain", np.nan)
            rows.append({"arch": arch, "method": name(label), "change from own original": own.text(1),
                         "layers that rise (%)": rise.text(0), "vs Retrain": vs.text(1),
                         "noise floor": f"±{margin:.1f}" if math.isfinite(margin) else "no noise floor",
                         "distance to Retrain": versus_floor(vs, margin)})
    return pd.DataFrame(rows).set_index(["arch", "method"]) if rows else pd.DataFrame()


def claim_c1(records, analysis=None) -> Claim:
    """C1: RL, SalUn and SCRUB raise the fairness-gap (judged on the change from their own original)."""
    a = analysis or report.analysis_of(records)
    f = report.model_frame(records, a, "class")
    archs = _archs(f)
    floors = _floors(f, ["d_own", "d_retrain"], a)
    part = Part("own-original change", "mean over RL, SalUn and SCRUB of the change of ε from the model's own "
                "original: mean over layers of log(ε/ε_original) ×100 (≈ %)", "log-ratio ×100", +1,
                _judge(100 * _group_mean(f, APPROXIMATE, "d_own"), archs, a, +1, 100 * floors.d_own, floors.n_retrains))
    vs = _judge(100 * _group_mean(f, APPROXIMATE, "d_retrain"), archs, a, +1, 100 * floors.d_retrain, floors.n_retrains)
    notes = [f"Distance to Retrain (the paper's reference), {arch}: mean log(ε/ε_Retrain) ×100 of RL/SalUn/SCRUB "
             f"{v.estimate.text(1)}: {versus_floor(v.estimate, v.margin)}"
             + (f" (noise floor {v.margin_text(1)})" if math.isfinite(v.margin) else "") for arch, v in vs.items()]
    return Claim("C1", "RL, SalUn and SCRUB raise the fairness-gap", [part],
                 {arch: v.verdict for arch, v in part.per_arch.items()},
                 "the verdict of the own-original change", own_change_table(f, a, floors), notes,
                 "03_layer_analysis (own-original heatmap)")


# --------------------------------------------------------------------------- C2

def c2_per_seed(records, analysis, include_collapsed: bool = False, definition=None, class_set=None,
                attack=None, attack_eps=None, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per (arch, seed): Spearman ρ over the seed's models (class-wise; Retrain replicates left out)
    between the layer-mean ε and the drop, the adversarial accuracy, and the partial ρ given clean accuracy."""
    if frame is None:
        frame = report.model_frame(records, analysis, "class", definition, class_set, attack, attack_eps)
    f = frame
    collapsed = f[~f.replicate & f.collapsed].groupby(["arch", "seed"]).size()
    f = f[~f.replicate & (include_collapsed | ~f.collapsed)]
    rows = []
    for (arch, seed), g in f.groupby(["arch", "seed"]):
        rows.append({"arch": arch, "seed": seed, "models": len(g), "collapsed_out": 0 if include_collapsed
                     else int(collapsed.get((arch, seed), 0)),
                     "drop": spearman(g.eps_mean, g["drop"]), "adv": spearman(g.eps_mean, g.adv),
                     "partial": partial_spearman(g.eps_mean, g.adv, g.clean)})
    return pd.DataFrame(rows, columns=["arch", "seed", "models", "collapsed_out", "drop", "adv", "partial"])


C2_MEASURES = {  # outcome: (claimed sign of ρ(ε, outcome), words)
    "drop": (+1, "ρ(ε, drop under attack)"),
    "adv": (-1, "ρ(ε, adversarial accuracy)"),
    "partial": (-1, "partial ρ(ε, adversarial accuracy | clean accuracy)"),
}


def _c2_judge(per: pd.DataFrame, measure: str, archs, a) -> dict[str, ArchVerdict]:
    s = per.set_index(["arch", "seed"])[measure]
    return _judge(s, archs, a, C2_MEASURES[measure][0], fisher=True, margin_note="none (a correlation)")


def claim_c2(records, analysis=None) -> Claim:
    """C2: a higher fairness-gap goes with a larger drop under attack (within-seed Spearman)."""
    a = analysis or report.analysis_of(records)
    per = c2_per_seed(records, a)
    archs = sorted(per.arch.unique())
    where = f"{a.attack.upper()} at {a.attack_eps:g}/255"
    parts = {m: _c2_judge(per, m, archs, a) for m in C2_MEASURES}
    with_collapsed = _c2_judge(c2_per_seed(records, a, include_collapsed=True), "drop", archs, a)
    rows, notes = [], []
    for arch in archs:
        measures = [(m, words) for m, (_, words) in C2_MEASURES.items()]
        for m, label in measures + [("with collapsed", "ρ(ε, drop), collapsed models included")]:
            v = with_collapsed[arch] if m == "with collapsed" else parts[m][arch]
            g = per[per.arch == arch]
            sign = "+" if C2_MEASURES.get(m, (1,))[0] > 0 else "−"
            rows.append({"arch": arch, "measure": label, "claimed sign": sign,
                         "ρ": v.estimate.text(2), "verdict": v.verdict,
                         "models per seed": f"{int(g.models.min())}–{int(g.models.max())}" if len(g) else "—",
                         "collapsed left out": "0" if m == "with collapsed" else str(int(g.collapsed_out.sum()))})
        main = parts["drop"][arch].verdict
        agree = [C2_MEASURES[m][1] for m in ("adv", "partial") if parts[m][arch].verdict == main]
        differ = [f"{C2_MEASURES[m][1]} reads {parts[m][arch].verdict}" for m in ("adv", "partial")
                  if parts[m][arch].verdict != main]
        notes.append(f"{arch}: the verdict rests on the drop ({main}); " +
                     (f"both other measures agree (they read {main} as well)." if not differ else
                      ("; ".join(differ) + (f"; {agree[0]} agrees." if agree else "."))))
        if with_collapsed[arch].verdict != main:
            notes.append(f"{arch}: with the collapsed models included the drop reads {with_collapsed[arch].verdict} "
                         "(collapsed models sit at the floor of every accuracy).")
    part = Part("ρ(ε, drop)", f"Spearman ρ within each seed between the layer-mean ε and the drop under attack "
                f"(clean − {where} accuracy, points), collapsed models left out; mean Fisher z over seeds",
                "Spearman ρ", +1, parts["drop"])
    detail = pd.DataFrame(rows).set_index(["arch", "measure"]) if rows else pd.DataFrame()
    return Claim("C2", "a higher fairness-gap goes with more vulnerability to attack", [part],
                 {arch: v.verdict for arch, v in part.per_arch.items()},
                 "the verdict of ρ(ε, drop); three-way (no equivalence margin is defined for a correlation)",
                 detail, notes, "04_correlation (scatter, grid)")


def c2_grid(records, analysis=None, outcome: str = "drop") -> pd.DataFrame:
    """The sensitivity grid: within-seed ρ(ε, outcome) for every σ definition × class set ×
    attack × ε, per architecture; p-values (t-test of the mean Fisher z) Holm-adjusted over the grid."""
    from ..fairness import CLASS_SETS, SIGMA_DEFINITIONS
    a = analysis or report.analysis_of(records)
    att = report.attack_frame([r for r in records if r["scenario"] == "class"])
    points = sorted({(k, e) for k, e in zip(att.attack, att.eps) if e > 0})
    base = report.model_frame(records, a, "class")          # collapse, replicates, clean accuracy: fixed
    keys = pd.MultiIndex.from_frame(base[report.MODEL_KEYS])
    rows = []
    for definition in SIGMA_DEFINITIONS:
        for class_set in CLASS_SETS:
            eps = layer_mean_epsilon(records, definition, class_set).set_index(report.MODEL_KEYS).epsilon
            for attack, e in points:
                adv = att[(att.attack == attack) & (att.eps == e)].set_index(report.MODEL_KEYS).accuracy
                f = base.assign(eps_mean=eps.reindex(keys).to_numpy(), adv=adv.reindex(keys).to_numpy())
                per = c2_per_seed(records, a, frame=f.assign(drop=f.clean - f.adv))
                for arch, g in per.groupby("arch"):
                    est = fisher_interval(g[outcome], a.level, a.min_seeds)
                    rows.append({"arch": arch, "σ": definition, "classes": class_set, "attack": attack, "ε×255": e,
                                 "ρ": est.mean, "lo": est.lo, "hi": est.hi, "seeds": est.n, "p": est.p,
                                 "headline": (definition, class_set, attack) == (a.definition, a.class_set, a.attack)
                                 and math.isclose(e, a.attack_eps)})
    grid = pd.DataFrame(rows)
    if len(grid):
        grid["p (Holm)"] = holm(grid.p)
    return grid


# --------------------------------------------------------------------------- C3

def thirds_table(records, analysis=None) -> pd.DataFrame:
    """Per (arch, method, third): mean |log(ε/ε_original)| ×100 over the third's layers, over seeds."""
    a = analysis or report.analysis_of(records)
    lay = report.layer_frame(records, a.definition, a.class_set, "class")
    if lay.empty:
        return pd.DataFrame()
    lay = lay[~lay.label.isin(["original", "retrain"]) & (lay.label == lay.method)]
    per_seed = lay.assign(v=100 * lay.log_vs_original.abs()).groupby(["arch", "label", "third", "seed"]).v.mean()
    rows = []
    for (arch, label, third), g in per_seed.groupby(level=["arch", "label", "third"]):
        e = _est(g.to_numpy(), a)
        rows.append({"arch": arch, "label": label, "method": name(label), "third": third, "mean": e.mean, "lo": e.lo,
                     "hi": e.hi, "seeds": e.n, "text": e.text(1)})
    return pd.DataFrame(rows)


def claim_c3(records, analysis=None) -> Claim:
    """C3: the change of ε concentrates in the intermediate and last layers beyond what FT shows."""
    a = analysis or report.analysis_of(records)
    f = report.model_frame(records, a, "class")
    archs = _archs(f)
    floors = _floors(f, ["concentration"], a)
    trio = _group_mean(f, APPROXIMATE, "concentration")
    ft = f[f.label == CONTROL].set_index(["arch", "seed"]).concentration
    part = Part("beyond FT", "(mean |log(ε/ε_original)| ×100 in the intermediate and last thirds − in the early "
                "third), RL/SalUn/SCRUB mean minus FT's", "log-ratio ×100", +1,
                _judge(100 * (trio - ft).dropna(), archs, a, +1, 100 * floors.concentration, floors.n_retrains))
    raw = _judge(100 * trio, archs, a, +1, 100 * floors.concentration, floors.n_retrains)
    ctl = _judge(100 * ft, archs, a, +1, 100 * floors.concentration, floors.n_retrains)
    notes = [f"{arch}: later − early for RL/SalUn/SCRUB {raw[arch].estimate.text(1)} ({raw[arch].verdict}), "
             f"for FT {ctl[arch].estimate.text(1)} ({ctl[arch].verdict})" for arch in archs]
    notes.append("CF-k and EU-k are left out: their early layers are untouched by construction.")
    detail = thirds_table(records, a)
    if len(detail):
        detail = detail[~detail.label.isin(LAST_LAYERS_ONLY)].pivot_table(
            index=["arch", "method"], columns="third", values="text", aggfunc="first")
        detail = detail[[c for c in ("early", "intermediate", "last") if c in detail.columns]]
    return Claim("C3", "the change of ε sits in the intermediate and last layers", [part],
                 {arch: v.verdict for arch, v in part.per_arch.items()},
                 "the verdict of the concentration beyond FT's (FT: change that merely propagates downstream)",
                 detail, notes, "03_layer_analysis (thirds)")


# --------------------------------------------------------------------------- C4

def claim_c4(records, analysis=None) -> Claim:
    """C4: CF-k and BS change ε and robustness less than RL, SalUn and SCRUB (from their own original)."""
    a = analysis or report.analysis_of(records)
    f = report.model_frame(records, a, "class")
    archs = _archs(f)
    floors = _floors(f, ["d_own", "adv_change", "d_retrain"], a)
    where = f"{a.attack.upper()} {a.attack_eps:g}/255"

    def contrast(column, scale):
        return scale * (_group_mean(f, APPROXIMATE, column, absolute=True)
                        - _group_mean(f, KEEPERS, column, absolute=True)).dropna()
    gap = Part("|Δε|", "|own-original change of ε| (log-ratio ×100), mean over RL/SalUn/SCRUB minus mean over "
               "CF-k/BS", "log-ratio ×100", +1,
               _judge(contrast("d_own", 100), archs, a, +1, 100 * floors.d_own, floors.n_retrains))
    rob = Part("|Δ robustness|", f"|change of {where} accuracy from the own original| (points), RL/SalUn/SCRUB "
               "minus CF-k/BS", "points", +1,
               _judge(contrast("adv_change", 1), archs, a, +1, floors.adv_change, floors.n_retrains))
    vs = _judge(contrast("d_retrain", 100), archs, a, +1, 100 * floors.d_retrain, floors.n_retrains)
    notes = [f"Distance to Retrain, {arch}: |log(ε/ε_Retrain)| ×100 RL/SalUn/SCRUB minus CF-k/BS "
             f"{v.estimate.text(1)}, {v.verdict} ({v.margin_text(1)})" for arch, v in vs.items()]
    rows = []
    for arch in archs:
        for label in [*APPROXIMATE, *KEEPERS]:
            g = f[(f.arch == arch) & (f.label == label)]
            group = "RL/SalUn/SCRUB" if label in APPROXIMATE else "CF-k/BS"
            rows.append({"arch": arch, "method": name(label), "group": group,
                         "|Δε| (log-ratio ×100)": _est(100 * g.d_own.abs(), a).text(1),
                         f"|Δ {where} acc| (points)": _est(g.adv_change.abs(), a).text(1)})
    combined = {arch: combine([gap.per_arch[arch].verdict, rob.per_arch[arch].verdict]) for arch in archs}
    return Claim("C4", "CF-k and BS keep gap and robustness better than RL, SalUn, SCRUB", [gap, rob], combined,
                 "both parts combined: supported if both are, contradicted if either is, equivalent if both are",
                 pd.DataFrame(rows).set_index(["arch", "method"]) if rows else pd.DataFrame(), notes,
                 "04_correlation, methods/cf_k, methods/bs")


# --------------------------------------------------------------------------- C5

def ua_informative(frame: pd.DataFrame, labels) -> bool:
    """False when UA is 100 for every model compared (class-wise forgetting): |ΔUA| is then 0 by construction."""
    d = frame[frame.label.isin(labels)]
    return bool(len(d)) and not bool((d.UA >= 100 - 1e-9).all())


def c5_label(frame: pd.DataFrame, method: str, k: int) -> str | None:
    """The label of `method` run at k (its default run or a k-sweep variant)."""
    hits = frame[(frame.method == method) & (frame.k == k)].label.unique()
    return sorted(hits, key=len)[0] if len(hits) else None


def claim_c5(records, analysis=None) -> Claim:
    """C5: CF-k at the declared k matches Retrain (within the noise floor) and takes less time than FT."""
    a = analysis or report.analysis_of(records)
    f = report.model_frame(records, a, "class")
    archs = _archs(f)
    floors = _floors(f, ["TA", "UA"], a)
    use_ua = ua_informative(f, ["retrain", *(c5_label(f, m, a.c5_k) for m in LAST_LAYERS_ONLY)])
    retrain = f[f.label == "retrain"].set_index(["arch", "seed"])
    ft_time = f[f.label == CONTROL].groupby("arch").time_s.median()
    parts, rows, verdicts_, notes = [], [], {}, []
    results = {}
    for method in LAST_LAYERS_ONLY:
        label = c5_label(f, method, a.c5_k)
        g = f[f.label == label].set_index(["arch", "seed"]) if label else f.iloc[:0].set_index(["arch", "seed"])
        ta = _judge((g.TA - retrain.TA).dropna(), archs, a, 0, floors.TA, floors.n_retrains)
        ua = _judge((g.UA - retrain.UA).dropna(), archs, a, 0, floors.UA, floors.n_retrains) if use_ua else None
        times = g.groupby(level="arch").time_s.median()
        results[method] = (label, ta, ua, times)
        for arch in archs:
            ratio = times.get(arch, np.nan) / ft_time.get(arch, np.nan)
            checks = [ta[arch].verdict] + ([ua[arch].verdict] if ua else [])
            cheaper = bool(ratio < 1) if math.isfinite(ratio) else None
            v = ("supported" if all(c == "equivalent" for c in checks) and cheaper else
                 "contradicted" if any(c == "different" for c in checks) or cheaper is False else "inconclusive")
            rows.append({"arch": arch, "method": name(label) if label else f"{NAMES[method]} (k={a.c5_k}: not run)",
                         "TA − TA_Retrain (points)": ta[arch].estimate.text(1), "TA": ta[arch].verdict,
                         "TA noise floor": ta[arch].margin_text(1),
                         "UA − UA_Retrain (points)": ua[arch].estimate.text(1) if ua else "left out: always 100",
                         "median time (s)": f"{times.get(arch, np.nan):.1f}",
                         "median FT time (s)": f"{ft_time.get(arch, np.nan):.1f}",
                         "time / FT": f"{ratio:.2f}", "verdict": v})
            if method == "cf_k":
                verdicts_[arch] = v
    label, ta, ua, _ = results["cf_k"]
    parts.append(Part("TA − TA_Retrain", f"TA of {name(label) if label else 'CF-k'} minus Retrain's (points); "
                      "suffices if the interval lies inside the Retrain noise floor of TA", "points", 0, ta))
    if ua:
        parts.append(Part("UA − UA_Retrain", "UA minus Retrain's (points)", "points", 0, ua))
    else:
        notes.append("UA is 100 for Retrain and CF-k/EU-k in every seed (class-wise forgetting): |UA − UA_Retrain| "
                     "is 0 by construction and left out.")
    notes.append(f"k is fixed in the profile (c5_k = {a.c5_k}), never chosen after the fact; times are medians over "
                 "seeds, 'cheaper' means less time than FT.")
    return Claim("C5", f"the last layers suffice (CF-k, k = {a.c5_k}) and cost less than FT", parts,
                 verdicts_, "supported if TA (and UA where informative) is equivalent to Retrain's within the noise "
                 "floor and the median time is below FT's; contradicted if either lies beyond the floor or the time is "
                 "not below FT's", pd.DataFrame(rows).set_index(["arch", "method"]) if rows else pd.DataFrame(), notes,
                 "03_layer_analysis (k sweep)")


def all_claims(records, analysis=None) -> list[Claim]:
    a = analysis or report.analysis_of(records)
    return [claim(records, a) for claim in (claim_c1, claim_c2, claim_c3, claim_c4, claim_c5)]


# --------------------------------------------------------------------------- beyond the paper

def best_existing(frame: pd.DataFrame, exclude) -> pd.Series:
    """Per arch: the existing method (default run) with the smallest mean Avg. Gap over seeds."""
    d = frame[(frame.label == frame.method) & ~frame.method.isin(["original", "retrain", *exclude])]
    return d.groupby(["arch", "label"]).avg_gap.mean().groupby(level="arch").idxmin().map(lambda t: t[1])


SATURATED = 1.0   # points: an attack that leaves Retrain below this accuracy (mean over its ε > 0) tells no models apart


def retrain_attack_accuracy(records, scenario: str) -> pd.Series:
    """Per (arch, attack): Retrain's accuracy under the attack, mean over its ε > 0 and the seeds (points)."""
    att = report.attack_frame([r for r in records if r["scenario"] == scenario and r["label"] == "retrain"])
    return att[att.eps > 0].groupby(["arch", "attack"]).accuracy.mean() if len(att) else pd.Series(dtype=float)


def beyond_the_paper(records, method: str = "keep_gap", base: str = "rl", analysis=None,
                     label: str | None = None) -> list[Claim]:
    """The new method against its base and the paper's methods, one Claim per scenario (empty when
    the method has no records). Criteria, each per seed then over seeds: forgets like Retrain
    (|UA − UA_Retrain| and |MIA − MIA_Retrain| minus the best existing method's Avg. Gap, < 0 claimed);
    keeps ε closer to Retrain's than its base (mean |log(ε/ε_Retrain)| ×100, new − base, < 0
    claimed); keeps FGSM and PGD accuracy closer to Retrain's than its base (mean |acc − acc_Retrain|
    over the attack's ε, new − base, < 0 claimed), left out where the profile ran no such attack and on
    an architecture where the attack leaves Retrain below SATURATED accuracy (every model then sits at
    the floor). The runs labelled `label` are compared (default: the method's default runs, label =
    method; a variant such as "keep_gap-spread" is another label)."""
    a = analysis or report.analysis_of(records)
    label = label or method
    attacks_run = report.attacks_measured(report.attack_frame(records))   # the same for every scenario
    out = []
    for scenario in sorted({r["scenario"] for r in records if r["label"] == label}):
        f = report.model_frame(records, a, scenario)
        archs = _archs(f)
        floors = _floors(f, ["dist_retrain", "fgsm_dist_retrain", "pgd_dist_retrain"], a)
        new = f[f.label == label].set_index(["arch", "seed"])
        ref = f[f.label == base].set_index(["arch", "seed"])
        retrain = f[f.label == "retrain"].set_index(["arch", "seed"])
        best = best_existing(f, exclude=[method, label])
        best_gap = pd.concat([f[(f.arch == arch) & (f.label == lbl)].set_index(["arch", "seed"]).avg_gap
                              for arch, lbl in best.items()]) if len(best) else pd.Series(dtype=float)
        parts, notes = [], [f"{arch}: best existing method by Avg. Gap: {name(lbl)}" for arch, lbl in best.items()]
        under_attack = retrain_attack_accuracy(records, scenario)
        for metric in ("UA", "MIA"):
            if metric == "UA" and not ua_informative(f, ["retrain", label]):
                continue
            parts.append(Part(f"forgets: |Δ{metric}|", f"|{metric} − {metric}_Retrain| minus the best existing "
                              "method's Avg. Gap (points; < 0: within it)", "points", -1,
                              _judge(((new[metric] - retrain[metric]).abs() - best_gap).dropna(), archs, a, -1,
                                     margin_note="none (a benchmark threshold)")))
        for col, attack, words, unit, scale in (("dist_retrain", None, "ε per layer", "log-ratio ×100", 100),
                                                ("fgsm_dist_retrain", "fgsm", "FGSM accuracy", "points", 1),
                                                ("pgd_dist_retrain", "pgd", "PGD accuracy", "points", 1)):
            if attack and attack not in attacks_run:
                notes.append(f"{attack.upper()} was not run in this profile (no ε > 0): 'closer {words}' is left out.")
                continue
            judged = _judge(scale * (new[col] - ref[col]).dropna(), archs, a, -1, scale * floors[col],
                            floors.n_retrains)
            for arch in list(judged):
                floor = under_attack.get((arch, attack), np.inf)
                if floor < SATURATED:
                    del judged[arch]
                    notes.append(f"{arch}: Retrain's accuracy under {attack.upper()} is {floor:.1f}% (mean over its "
                                 f"ε and the seeds), below {SATURATED:g}%: the attack leaves every model at the floor, "
                                 f"so 'closer {words}' is left out there.")
            if judged:
                parts.append(Part(f"closer {words}", f"distance to Retrain in {words} ({unit}), {name(label)} minus "
                                  f"{name(base)} (< 0: closer)", unit, -1, judged))
        if not ua_informative(f, ["retrain", label]):
            notes.append(f"UA is 100 for Retrain and {name(label)} in every seed: |UA − UA_Retrain| is 0 and "
                         "left out.")
        out.append(Claim(f"{name(label)} ({scenario})", f"{name(label)} forgets like Retrain and keeps ε and "
                         f"robustness closer to Retrain's than {name(base)}", parts,
                         {arch: combine([p.per_arch[arch].verdict for p in parts if arch in p.per_arch])
                          for arch in archs},
                         "every criterion must be supported", _parts_table(parts), notes, f"methods/{method}"))
    return out


# --------------------------------------------------------------------------- pages

def _parts_table(parts: list[Part]) -> pd.DataFrame:
    rows = [{"arch": arch, "criterion": p.name, "effect": v.estimate.text(2), "unit": p.unit,
             "margin": v.margin_text(2), "verdict": v.verdict}
            for p in parts for arch, v in p.per_arch.items()]
    return pd.DataFrame(rows).set_index(["arch", "criterion"]) if rows else pd.DataFrame()


def scorecard(claims: list[Claim]) -> pd.DataFrame:
    """One row per claim, part and architecture: verdict, effect with interval, seeds, margin."""
    rows = []
    for c in claims:
        for p in c.parts:
            for arch, v in p.per_arch.items():
                rows.append({"claim": c.claim, "arch": arch, "part": p.name, "verdict": c.verdicts.get(arch, v.verdict),
                             "part verdict": v.verdict, "effect [interval]": v.estimate.text(2).rsplit(" (", 1)[0],
                             "unit": p.unit, "seeds": v.estimate.n, "margin (± noise floor)": v.margin_text(2),
                             "overall": c.overall})
    return pd.DataFrame(rows).set_index(["claim", "arch", "part"]) if rows else pd.DataFrame()


def what_would_change(v: ArchVerdict, unit: str = "") -> str:
    """One sentence on what would change this verdict, from its numbers."""
    e = v.estimate
    if not e.has_interval:
        return f"It rests on {e.seeds_text}; an interval needs at least {e.min_n} seeds."
    floor = math.isfinite(v.margin)
    if v.verdict == "equivalent":
        return (f"The interval lies inside ±{v.margin:.2f} {unit}; a noise floor measured smaller (more Retrains) "
                "or an interval that widens with more seeds could make it inconclusive.")
    if v.verdict in ("supported", "contradicted"):
        clear = min(abs(e.lo), abs(e.hi))
        return (f"The interval clears 0 by {clear:.2f} {unit}; a shift of the mean by that much, or a wider interval, "
                "would make it inconclusive.")
    if v.verdict in ("different",):
        return ("The interval lies beyond the noise floor; only a larger noise floor or new seeds nearer 0 "
                "would change it.")
    hints = []
    n = seeds_needed(e, abs(e.mean)) if e.mean != 0 else None
    if n:
        hints.append(f"about {n} seeds would exclude 0 if the mean stayed at {signed(e.mean)}")
    if floor and abs(e.mean) < v.margin:
        m = seeds_needed(e, v.margin - abs(e.mean))
        if m:
            hints.append(f"about {m} seeds would show equivalence within ±{v.margin:.2f}")
    if not floor and v.margin_note == "no noise floor":
        hints.append("Retrain replicates would give a noise floor, and with it a test of equivalence")
    return ("At the observed spread over seeds, " + "; ".join(hints) + ".") if hints else \
        "The interval includes 0; more seeds would narrow it."


MEANING = {
    "supported": "the data agree with the claim",
    "contradicted": "the data show the opposite of the claim",
    "equivalent": "the effect is no larger than the gap between two Retrains: practically none",
    "inconclusive": "the data cannot tell",
    "differs by architecture": "the architectures disagree",
    "not computed": "there are no results to judge it",
}


def plain_summary(claims: list[Claim]) -> str:
    """The verdicts in plain words, one bullet per claim (markdown)."""
    lines = []
    for c in claims:
        where = ("; ".join(f"{c.verdicts[arch]} on {arch}" for arch in c.verdicts)
                 if c.overall == "differs by architecture" else
                 f"on {'both architectures' if len(c.verdicts) == 2 else 'every architecture'}" if len(c.verdicts) > 1
                 else f"on {next(iter(c.verdicts), 'no architecture')}")
        if len(c.parts) == 1:
            p = c.parts[0]
            numbers = "; ".join(f"{arch}: {v.estimate.text(2)}" for arch, v in p.per_arch.items())
            evidence = f"{p.name} ({p.unit}): {numbers}."
        else:
            evidence = "By part: " + "; ".join(
                f"{p.name}: " + ", ".join(f"{v.verdict} on {arch}" for arch, v in p.per_arch.items())
                for p in c.parts) + "."
        lines.append(f"- **{c.claim}**, {c.statement}: **{c.overall}** ({where}); {MEANING.get(c.overall, '')}. "
                     + evidence)
    return "\n".join(lines)


def claim_markdown(c: Claim) -> str:
    """A claim's section: what is measured, the verdict per architecture with its reason, what
    would change it, and the notes (markdown)."""
    out = [f"### {c.claim}: {c.statement} — **{c.overall}**", "", f"Verdict rule: {c.rule}.", ""]
    for p in c.parts:
        out.append(f"**{p.name}** — {p.measured_as}.")
        out.append("")
        for arch, v in p.per_arch.items():
            out.append(f"- {arch}: {v.estimate.text(2)} {p.unit}; margin {v.margin_text(2)}; **{v.verdict}** "
                       f"({v.reason}). {what_would_change(v, p.unit)}")
        out.append("")
    out += [f"- {n}" for n in c.notes]
    if c.figure:
        out += ["", f"Figure: {c.figure}."]
    return "\n".join(out)


def rules_text(analysis) -> str:
    """The statistical rules with the profile's values (markdown), for the verdicts page and README."""
    a = analysis
    return "\n".join([
        f"- **Unit**: the seed. Models of one seed share an original and a Retrain, so every effect is computed "
        f"within a seed first, then averaged over seeds with a {a.level:.0%} Student-t interval "
        f"(mean ± t·sd/√n). With fewer than {a.min_seeds} seeds no interval is drawn and the page says so.",
        "- **Re-referenced**: a change of ε is taken against the model's own original, per layer, as "
        "100·log(ε/ε_original), then averaged over layers.",
        "- **Noise floor**: for any quantity Q, the root-mean-square difference of Q between two Retrains of the "
        "same split that differ only in their training seed (√2 × their standard deviation), from the Retrain "
        f"replicates (at least {a.min_seeds} Retrains). Without replicates: \"no noise floor\".",
        "- **Verdict** per claim and architecture, in this order: *equivalent* if the interval lies inside ± the "
        "noise floor; *supported* if it excludes 0 in the claimed direction; *contradicted* if it excludes 0 in the "
        "opposite direction; *inconclusive* otherwise (and always without an interval, or when only a noise floor "
        "could decide). A claim's overall verdict is given only where the architectures agree.",
        f"- **Declared before reading results**: fairness-gap from σ `{a.definition}`, {a.class_set} classes; "
        f"robustness {a.attack.upper()} at {a.attack_eps:g}/255; C5 at k = {a.c5_k}; a model is *collapsed* "
        f"when its TA is below {a.collapse_fraction:.0%} of its own original's.",
        "- **Correlations** (C2): Spearman ρ within each seed over its models, Fisher z averaged over seeds with a "
        "t-interval; no equivalence margin is defined for ρ. The sensitivity grid's p-values are Holm-adjusted.",
    ])


def salun_table(records) -> pd.DataFrame:
    """Random forgetting in SalUn's Table 1 format: mean ± std over seeds (the seeds column says
    'one seed' where there is one), beside SalUn's published numbers (ResNet-18 only)."""
    random = [r for r in records if r["scenario"] == "random"]
    if not random:                    # e.g. a profile whose random-forgetting chunks are not computed yet
        return pd.DataFrame()
    m = report.metrics_frame(random)
    m = m[(m.label == m.method) & (m.label != "original")]
    cols = {"UA": "UA", "RA": "RA", "TA": "TA", "MIA": "MIA-eff.", "avg_gap": "Avg. Gap"}
    rows = []
    for (arch, label), g in m.groupby(["arch", "label"], sort=False):
        n = len(g)
        row = {("this run", "seeds"): "one seed" if n == 1 else str(n)}
        for c, title in cols.items():
            row[("this run", title)] = f"{g[c].mean():.2f}" + (f" ± {g[c].std():.2f}" if n > 1 else "")
        pub = SALUN_TABLE1.get(label)
        for title, v in zip(cols.values(), pub or [None] * 5):
            row[("SalUn Table 1", title)] = "—" if v is None else f"{v:.2f}"
        rows.append(((arch, name(label)), row))
    index = pd.MultiIndex.from_tuples([i for i, _ in rows], names=["arch", "method"])
    table = pd.DataFrame([r for _, r in rows], index=index)
    table.columns = pd.MultiIndex.from_tuples(table.columns)
    return table


def salun_protocol_notes(records) -> str:
    """The protocol differences between these results and SalUn's Table 1, read from the records (markdown)."""
    from ..config import get_profile
    rs = [r for r in records if r["scenario"] == "random"]
    if not rs:
        return "No random-forgetting results on this profile."
    p = get_profile(rs[0]["profile"])
    archs = sorted({r["arch"] for r in rs})
    seeds = sorted({r["seed"] for r in rs})
    sizes = rs[0]["sizes"]
    unlearn = sorted({(r["label"], r["stats"]["hyperparameters"].get("epochs"), r["stats"]["hyperparameters"].get("lr"))
                      for r in rs if r["method"] not in ("original", "retrain") and r["label"] == r["method"]})
    t = p.train_config(archs[0])
    return "\n".join([
        f"- **Models**: {', '.join(archs)}; SalUn's Table 1 is a full-width ResNet-18.",
        f"- **Data**: {rs[0]['data_source']}; {sizes['retain'] + sizes['forget']} training images "
        f"({sizes['forget']} forgotten), {sizes['test']} test images; SalUn uses the original CIFAR-10 PNGs, "
        "45,000 training images (4,500 forgotten) and 10,000 test images.",
        f"- **Original and Retrain**: {t.epochs} epochs, {t.optimizer} lr {t.lr} ({t.schedule}); SalUn: 182 epochs, "
        "SGD lr 0.1, cosine.",
        "- **Unlearning**: " + ", ".join(f"{name(lbl)} {ep} epochs at lr {lr}" for lbl, ep, lr in unlearn if ep) +
        "; SalUn: 10 epochs (GA 5), learning rate tuned per method in [1e-4, 1e-1] for the smallest Avg. Gap.",
        f"- **Trials**: {len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}); "
        "SalUn: mean of 10 trials.",
        "- **SalUn's weight-decay leak**: SalUn's published numbers predate the official fix of a leak through which "
        "weight decay moved the weights outside the saliency mask; this package restores those weights after every "
        "step (see the SalUn page), so its SalUn row follows the corrected method.",
    ])
