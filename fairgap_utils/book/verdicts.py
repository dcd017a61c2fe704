"""A verdict per claim of the paper, computed from the result files (never typed in).

The rules are those of the analysis plan (book/analysis_plan.md), declared in the profile's
`AnalysisConfig` before the results: σ definition and class set of the fairness-gap, headline
attack and ε, the k of C5, the collapse threshold, the margins, α. The statistics are those of
`stats`: one effect per seed (models of a seed share an original and a Retrain), a t-interval
over seeds, a direction test and an equivalence test against the Retrain-vs-Retrain noise
floor, both Holm-adjusted over the claims' family (`adjust`), and four outcomes.

Every change of ε is taken against the model's own original, as a log-ratio
log(ε_method / ε_original) per layer, averaged over layers and shown ×100 (≈ %): a
method that leaves a layer untouched scores 0 there, whatever the spread between
independently trained originals and Retrains. The distance to Retrain is reported
beside it and judged against the noise floor.

- **C1** RL, SalUn and SCRUB raise the fairness-gap: their mean own-original change of ε.
- **C2** a higher gap goes with more vulnerability: within-seed partial Spearman ρ between
  the layer-mean ε and the adversarial accuracy given clean accuracy (collapsed models left
  out; margin |ρ| < `margin_rho`); the raw ρ with the drop and with adversarial accuracy are
  shown beside it and carry no verdict.
- **C3** the change sits in the intermediate and last layers: mean |log-ratio| in the
  intermediate+last thirds minus the early third, for RL/SalUn/SCRUB minus the same for
  FT (the control for change that merely propagates downstream); CF-k/EU-k left out.
- **C4** CF-k and BS keep gap and robustness: RL/SalUn/SCRUB minus BS in |own-original change
  of ε| (CF-k's ε change is fixed by construction: reported, not counted) and RL/SalUn/SCRUB
  minus CF-k/BS in |change of headline adversarial accuracy|; both parts combined.
- **C5** the last layers suffice and are cheaper: CF-k at `c5_k` against Retrain in TA and UA
  by equivalence within the noise floor (UA class-wise: a declared margin), and cheaper than FT
  by the median time over seeds.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import manifest
from ..config import get_profile
from ..definitions import CLASS_SETS, SIGMA_DEFINITIONS
from . import dose_response as DR
from . import report
from .stats import (WITHIN, Estimate, as_claimed, combine, decide, fisher_interval, holm, overall, partial_spearman,
                    seed_interval, seeds_needed, signed, spearman, tost_p)

APPROXIMATE = ("rl", "salun", "scrub")   # the methods the paper says raise the gap
KEEPERS = ("cf_k", "bs")                 # the methods it says keep gap and robustness (CF-k at its default k)
KEEPERS_GAP = ("bs",)                    # of those, the ones whose ε change is not fixed by construction (C4)
CONTROL = "ft"                           # C3's control: fine-tuning on D_r, no forgetting objective
LAST_LAYERS_ONLY = ("cf_k", "eu_k")      # early layers untouched by construction: left out of C3
NEW_METHOD, NEW_METHOD_BASE = "keep_gap", "rl"   # beyond the paper: RL plus a fairness-gap penalty

# SalUn (Fan et al., ICLR 2024), Table 1: random 10% forgetting, ResNet-18, CIFAR-10, mean of 10 trials.
SALUN_TABLE1 = {
    "retrain": (5.24, 100.00, 94.26, 12.88, 0.00), "ft": (0.63, 99.88, 94.06, 2.70, 3.78),
    "rl": (7.61, 99.67, 92.83, 37.36, 7.15), "ga": (0.69, 99.50, 94.01, 1.70, 4.12),
    "bs": (1.78, 98.29, 92.69, 8.96, 2.67), "l1_sparse": (4.19, 97.74, 91.59, 9.84, 2.26),
    "salun": (2.85, 99.62, 93.93, 14.39, 1.15),
}


def short_name(method: str) -> str:
    """A method's name in tables and verdicts: its module's SHORT, as the written plans hold it
    (`manifest.method_facts`); a method they do not know: its name."""
    return manifest.method_facts().get(method, {}).get("short", method)


def name(label: str) -> str:
    """A run's name in tables and verdicts: its method's short name, then its variant (`KeepGap (spread)`)."""
    method, _, variant = label.partition("-")
    return short_name(method) + (f" ({variant})" if variant else "")


# --------------------------------------------------------------------------- containers

def _p(p: float) -> str:
    return "n/a" if not math.isfinite(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")


@dataclass(frozen=True)
class ArchVerdict:
    """One part of a claim on one architecture: the effect over seeds, its margin, the two tests
    (raw and, after `adjust`, Holm-adjusted p-values) and the outcome they give."""
    estimate: Estimate
    margin: float          # the equivalence margin δ (NaN: none)
    n_retrains: int        # Retrains behind the margin (-1: a declared margin)
    direction: int         # the claimed sign (+1, −1) or 0 (a claim of no difference)
    p_direction: float     # two-sided t-test of the mean against 0
    p_equivalence: float   # TOST against ±margin (NaN without a margin)
    alpha: float = 0.05
    p_direction_adj: float = float("nan")
    p_equivalence_adj: float = float("nan")
    adjusted: bool = False
    margin_note: str = "no noise floor"   # what to say when there is no margin

    @property
    def verdict(self) -> str:
        if not self.estimate.has_interval:
            return "inconclusive"
        pd_, pe = (self.p_direction_adj, self.p_equivalence_adj) if self.adjusted else \
            (self.p_direction, self.p_equivalence)
        return decide(pd_, pe, self.estimate.mean, self.direction, self.alpha)

    @property
    def reason(self) -> str:
        e = self.estimate
        if not e.has_interval:
            return f"{e.seeds_text}: no interval, no verdict"
        how = "Holm-adjusted" if self.adjusted else "unadjusted"
        out = f"direction p = {_p(self.p_direction_adj if self.adjusted else self.p_direction)}"
        if math.isfinite(self.p_equivalence):
            out += f", equivalence p = {_p(self.p_equivalence_adj if self.adjusted else self.p_equivalence)}"
        else:
            out += "; no margin, so no equivalence test"
        return f"{out} ({how}, α = {self.alpha:g})"

    def margin_text(self, digits: int = 2) -> str:
        if not math.isfinite(self.margin):
            return self.margin_note
        if self.n_retrains < 0:
            return f"±{self.margin:.{digits}f} (declared)"
        return f"±{self.margin:.{digits}f} ({self.n_retrains} Retrains, lower bound)" if self.n_retrains else \
            f"±{self.margin:.{digits}f} (declared)"


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
    conditions: dict = field(default_factory=dict)   # per architecture: a condition beside the tests (C5: cheaper)

    @property
    def overall(self) -> str:
        return overall(self.verdicts)

    def recombine(self) -> None:
        """The per-architecture verdicts from the parts (read `as_claimed`) and `conditions`."""
        archs = dict.fromkeys(a for p in self.parts for a in p.per_arch)
        out = {}
        for arch in archs:
            v = combine([as_claimed(p.per_arch[arch].verdict, p.direction) for p in self.parts if arch in p.per_arch])
            cond = self.conditions.get(arch, True)
            if cond is False:
                v = "contradicted"
            elif cond is None and v == "supported":
                v = "inconclusive"
            out[arch] = v
        self.verdicts = out


def adjust(claims: list[Claim], alpha: float | None = None) -> list[Claim]:
    """Holm's adjustment over one family: every direction and equivalence test of every part of
    `claims` on every architecture; each part's outcome and each claim's verdict then follow the
    adjusted p-values (book/analysis_plan.md, Multiplicity)."""
    cells = [(c, p, arch) for c in claims for p in c.parts for arch in p.per_arch]
    raw = [x for _, p, arch in cells for x in (p.per_arch[arch].p_direction, p.per_arch[arch].p_equivalence)]
    adj = holm(raw)
    for i, (c, p, arch) in enumerate(cells):
        v = p.per_arch[arch]
        p.per_arch[arch] = dataclasses.replace(v, p_direction_adj=float(adj[2 * i]),
                                               p_equivalence_adj=float(adj[2 * i + 1]),
                                               alpha=v.alpha if alpha is None else alpha, adjusted=True)
    for c in claims:
        c.recombine()
    return claims


# --------------------------------------------------------------------------- helpers

def _archs(frame: pd.DataFrame) -> list[str]:
    return sorted(frame.arch.unique()) if len(frame) else []


def _floors(frame: pd.DataFrame, columns, analysis, scenario: str = "class") -> pd.DataFrame:
    floors = report.noise_floors(frame, columns, analysis, scenario)
    return floors.reindex(_archs(frame)).fillna({f"n:{c}": 0 for c in columns})


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


def _judge(per_seed: pd.Series, archs, analysis, direction: int, floors: pd.DataFrame | None = None,
           column: str | None = None, scale: float = 1.0, fisher: bool = False, margin: float | None = None,
           margin_note: str = "no noise floor") -> dict[str, ArchVerdict]:
    """The part's ArchVerdict per architecture: the interval over seeds of `per_seed`, its direction test
    and its equivalence test against the margin: `scale` × the floor of `column` in `floors`, or `margin`
    (declared; on the r scale for correlations, tested on the Fisher z scale when `fisher`)."""
    out = {}
    for arch, values in _by_arch(per_seed, archs).items():
        if fisher:
            est = fisher_interval(values, analysis.level, analysis.min_seeds)
            z = seed_interval(np.arctanh(np.clip(values, -0.999999, 0.999999)), analysis.level, analysis.min_seeds)
        else:
            est = z = seed_interval(values, analysis.level, analysis.min_seeds)
        if margin is not None:
            m, n = float(margin), -1
        elif floors is not None and column is not None and arch in floors.index:
            m, n = scale * float(floors.loc[arch, column]), int(floors.loc[arch, f"n:{column}"])
        else:
            m, n = float("nan"), 0
        p_eq = tost_p(z, math.atanh(m) if fisher and math.isfinite(m) else m)
        out[arch] = ArchVerdict(est, m, n, direction, z.p, p_eq, analysis.alpha, margin_note=margin_note)
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
                _judge(100 * _group_mean(f, APPROXIMATE, "d_own"), archs, a, +1, floors, "d_own", 100))
    vs = _judge(100 * _group_mean(f, APPROXIMATE, "d_retrain"), archs, a, +1, floors, "d_retrain", 100)
    notes = [f"Distance to Retrain (the paper's reference), {arch}: mean log(ε/ε_Retrain) ×100 of RL/SalUn/SCRUB "
             f"{v.estimate.text(1)}: {versus_floor(v.estimate, v.margin)}"
             + (f" (noise floor {v.margin_text(1)})" if math.isfinite(v.margin) else "") for arch, v in vs.items()]
    c = Claim("C1", "RL, SalUn and SCRUB raise the fairness-gap", [part], {},
              "the outcome of the own-original change", own_change_table(f, a, floors), notes,
              "03_layer_analysis (own-original heatmap)")
    c.recombine()
    return c


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
    return _judge(s, archs, a, C2_MEASURES[measure][0], fisher=True, margin=a.margin_rho)


def claim_c2(records, analysis=None) -> Claim:
    """C2: a higher fairness-gap goes with lower adversarial accuracy, clean accuracy held fixed
    (within-seed partial Spearman ρ, the declared measure `analysis.c2_measure`)."""
    a = analysis or report.analysis_of(records)
    per = c2_per_seed(records, a)
    archs = sorted(per.arch.unique())
    where = f"{a.attack.upper()} at {a.attack_eps:g}/255"
    parts = {m: _c2_judge(per, m, archs, a) for m in C2_MEASURES}
    main = a.c2_measure
    rows, notes = [], []
    for arch in archs:
        g = per[per.arch == arch]
        for m, (sign, words) in C2_MEASURES.items():
            v = parts[m][arch]
            rows.append({"arch": arch, "measure": words, "carries the verdict": "yes" if m == main else "no (shown)",
                         "claimed sign": "+" if sign > 0 else "−", "ρ": v.estimate.text(2),
                         "outcome (unadjusted)": v.verdict,
                         "models per seed": f"{int(g.models.min())}–{int(g.models.max())}" if len(g) else "—",
                         "collapsed left out": str(int(g.collapsed_out.sum()))})
    notes.append(f"The verdict rests on the {C2_MEASURES[main][1]}: clean accuracy is held fixed because the methods "
                 "with the largest ε also lose the most clean accuracy, so a raw correlation with the drop under "
                 "attack mostly measures clean accuracy. The raw correlations are shown beside it and carry no "
                 "verdict.")
    part = Part(C2_MEASURES[main][1], f"Spearman ρ within each seed over its models (class-wise; Retrain "
                f"replicates and collapsed models left out), {where}; mean Fisher z over seeds; margin |ρ| < "
                f"{a.margin_rho:g} (declared)", "Spearman ρ", C2_MEASURES[main][0], parts[main])
    detail = pd.DataFrame(rows).set_index(["arch", "measure"]) if rows else pd.DataFrame()
    c = Claim("C2", "a higher fairness-gap goes with more vulnerability to attack", [part], {},
              f"the outcome of the {C2_MEASURES[main][1]}", detail, notes, "04_correlation (scatter, grid)")
    c.recombine()
    return c


def c2_grid(records, analysis=None, outcome: str | None = None) -> pd.DataFrame:
    """The sensitivity grid: within-seed ρ(ε, outcome) for every σ definition × class set ×
    attack × ε, per architecture; p-values (t-test of the mean Fisher z) Holm-adjusted over the grid."""
    a = analysis or report.analysis_of(records)
    outcome = outcome or a.c2_measure
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
                _judge(100 * (trio - ft).dropna(), archs, a, +1, floors, "concentration", 100))
    raw = _judge(100 * trio, archs, a, +1, floors, "concentration", 100)
    ctl = _judge(100 * ft, archs, a, +1, floors, "concentration", 100)
    notes = [f"{arch}: later − early for RL/SalUn/SCRUB {raw[arch].estimate.text(1)}, "
             f"for FT {ctl[arch].estimate.text(1)}" for arch in archs]
    notes.append("CF-k and EU-k are left out: their early layers are untouched by construction.")
    detail = thirds_table(records, a)
    if len(detail):
        detail = detail[~detail.label.isin(LAST_LAYERS_ONLY)].pivot_table(
            index=["arch", "method"], columns="third", values="text", aggfunc="first")
        detail = detail[[c for c in ("early", "intermediate", "last") if c in detail.columns]]
    c = Claim("C3", "the change of ε sits in the intermediate and last layers", [part], {},
              "the outcome of the concentration beyond FT's (FT: change that merely propagates downstream)",
              detail, notes, "03_layer_analysis (thirds)")
    c.recombine()
    return c


# --------------------------------------------------------------------------- C4

def claim_c4(records, analysis=None) -> Claim:
    """C4: BS changes ε, and CF-k and BS change robustness, less than RL, SalUn and SCRUB (from their own
    original). CF-k's change of ε is fixed by construction (book/analysis_plan.md): reported, not counted."""
    a = analysis or report.analysis_of(records)
    f = report.model_frame(records, a, "class")
    archs = _archs(f)
    floors = _floors(f, ["d_own", "adv_change", "d_retrain"], a)
    where = f"{a.attack.upper()} {a.attack_eps:g}/255"

    def contrast(column, scale, keepers):
        return scale * (_group_mean(f, APPROXIMATE, column, absolute=True)
                        - _group_mean(f, keepers, column, absolute=True)).dropna()
    keepers_gap = "/".join(name(m) for m in KEEPERS_GAP)
    gap = Part("|Δε|", f"|own-original change of ε| (log-ratio ×100), mean over RL/SalUn/SCRUB minus {keepers_gap}'s",
               "log-ratio ×100", +1, _judge(contrast("d_own", 100, KEEPERS_GAP), archs, a, +1, floors, "d_own", 100))
    rob = Part("|Δ robustness|", f"|change of {where} accuracy from the own original| (points), RL/SalUn/SCRUB "
               "minus CF-k/BS", "points", +1,
               _judge(contrast("adv_change", 1, KEEPERS), archs, a, +1, floors, "adv_change"))
    vs = _judge(contrast("d_retrain", 100, KEEPERS_GAP), archs, a, +1, floors, "d_retrain", 100)
    notes = [f"Distance to Retrain, {arch}: |log(ε/ε_Retrain)| ×100 RL/SalUn/SCRUB minus {keepers_gap} "
             f"{v.estimate.text(1)} ({v.margin_text(1)})" for arch, v in vs.items()]
    for arch in archs:
        cf = f[(f.arch == arch) & (f.label == "cf_k")]
        notes.append(f"{arch}: CF-k's |change of ε| {_est(100 * cf.d_own.abs(), a).text(1)} (log-ratio ×100) is "
                     "left out of the gap part, by construction: on the ViT it trains only layers after every "
                     "measured LayerNorm but the last, on the ResNet (k = 1) only the classifier, moving ε only "
                     "through the BatchNorm running statistics.")
    rows = []
    for arch in archs:
        for label in [*APPROXIMATE, *KEEPERS]:
            g = f[(f.arch == arch) & (f.label == label)]
            group = "RL/SalUn/SCRUB" if label in APPROXIMATE else "CF-k/BS"
            rows.append({"arch": arch, "method": name(label), "group": group,
                         "|Δε| (log-ratio ×100)": _est(100 * g.d_own.abs(), a).text(1)
                         + (" (by construction)" if label not in (*APPROXIMATE, *KEEPERS_GAP) else ""),
                         f"|Δ {where} acc| (points)": _est(g.adv_change.abs(), a).text(1)})
    c = Claim("C4", "CF-k and BS keep gap and robustness better than RL, SalUn, SCRUB", [gap, rob], {},
              "both parts combined: supported if both are, contradicted if either is beyond the floor, equivalent "
              "if both are equivalent or within the noise floor",
              pd.DataFrame(rows).set_index(["arch", "method"]) if rows else pd.DataFrame(), notes,
              "04_correlation, methods/cf_k, methods/bs")
    c.recombine()
    return c


# --------------------------------------------------------------------------- C5

def c5_label(frame: pd.DataFrame, method: str, k: int) -> str | None:
    """The label of `method` run at k (its default run or a k-sweep variant)."""
    hits = frame[(frame.method == method) & (frame.k == k)].label.unique()
    return sorted(hits, key=len)[0] if len(hits) else None


def claim_c5(records, analysis=None) -> Claim:
    """C5: CF-k at the declared k matches Retrain (TA and UA within the margin) and takes less time than FT."""
    a = analysis or report.analysis_of(records)
    f = report.model_frame(records, a, "class")
    archs = _archs(f)
    floors = _floors(f, ["TA", "UA"], a, "class")
    retrain = f[f.label == "retrain"].set_index(["arch", "seed"])
    ft_time = f[f.label == CONTROL].groupby("arch").time_s.median()
    rows, results, conditions = [], {}, {}
    for method in LAST_LAYERS_ONLY:
        label = c5_label(f, method, a.c5_k)
        g = f[f.label == label].set_index(["arch", "seed"]) if label else f.iloc[:0].set_index(["arch", "seed"])
        ta = _judge((g.TA - retrain.TA).dropna(), archs, a, 0, floors, "TA")
        ua = _judge((g.UA - retrain.UA).dropna(), archs, a, 0, floors, "UA")
        times = g.groupby(level="arch").time_s.median()
        results[method] = (label, ta, ua, times)
        for arch in archs:
            ratio = times.get(arch, np.nan) / ft_time.get(arch, np.nan)
            cheaper = bool(ratio < 1) if math.isfinite(ratio) else None
            if method == "cf_k":
                conditions[arch] = cheaper
            rows.append({"arch": arch, "method": name(label) if label else f"{name(method)} (k={a.c5_k}: not run)",
                         "TA − TA_Retrain (points)": ta[arch].estimate.text(1), "TA margin": ta[arch].margin_text(1),
                         "UA − UA_Retrain (points)": ua[arch].estimate.text(1), "UA margin": ua[arch].margin_text(1),
                         "median time (s)": f"{times.get(arch, np.nan):.1f}",
                         "median FT time (s)": f"{ft_time.get(arch, np.nan):.1f}", "time / FT": f"{ratio:.2f}"})
    label, ta, ua, _ = results["cf_k"]
    shown = name(label) if label else "CF-k"
    parts = [Part("TA − TA_Retrain", f"TA of {shown} minus Retrain's (points); suffices if equivalent within the "
                  "noise floor of TA", "points", 0, ta),
             Part("UA − UA_Retrain", f"UA of {shown} minus Retrain's (points); class-wise every Retrain has UA = 100, "
                  f"so the margin is declared ({a.margin_ua_class:g} point)", "points", 0, ua)]
    notes = [f"k is fixed in the profile (c5_k = {a.c5_k}), never chosen after the fact; times are medians over "
             "seeds, 'cheaper' (less time than FT) is a condition of the verdict, not a test.",
             "EU-k at the same k is shown in the table for comparison; it carries no verdict."]
    c = Claim("C5", f"the last layers suffice (CF-k, k = {a.c5_k}) and cost less than FT", parts, {},
              "supported if TA and UA are equivalent to Retrain's (or differ within the margin) and the median time is "
              "below FT's; contradicted if either differs beyond the margin or the time is not below FT's",
              pd.DataFrame(rows).set_index(["arch", "method"]) if rows else pd.DataFrame(), notes,
              "03_layer_analysis (k sweep)", conditions)
    c.recombine()
    return c


def all_claims(records, analysis=None) -> list[Claim]:
    """C1 to C5, their tests Holm-adjusted as one family (the paper's claims)."""
    a = analysis or report.analysis_of(records)
    return adjust([claim(records, a) for claim in (claim_c1, claim_c2, claim_c3, claim_c4, claim_c5)], a.alpha)


# --------------------------------------------------------------------------- beyond the paper

def beyond_the_paper(records, method: str = "keep_gap", base: str = "rl", analysis=None,
                     label: str | None = None) -> list[Claim]:
    """The new method against its base and Retrain, one Claim per scenario (empty when the method has no
    records), its tests Holm-adjusted as one family over both scenarios (book/analysis_plan.md, KeepGap).

    Criteria, each per seed then over seeds: keeps ε at its original's (mean over layers of
    |100 log(ε/ε_original)|, new − base, < 0 claimed; margin: the floor of layer-mean log ε); forgets like
    Retrain (UA − UA_Retrain and MIA − MIA_Retrain, equivalence; margins: their floors, UA class-wise
    declared); robustness at the headline attack and ε (new − base, > 0 claimed; new − Retrain,
    equivalence; margin: the floor of that accuracy); cost (median time against the base's, reported).
    The runs labelled `label` are compared (default: the method's default runs, label = method)."""
    a = analysis or report.analysis_of(records)
    label = label or method
    where = f"{a.attack.upper()} {a.attack_eps:g}/255"
    out = []
    for scenario in sorted({r["scenario"] for r in records if r["label"] == label}):
        f = report.model_frame(records, a, scenario)
        archs = _archs(f)
        floors = _floors(f, ["log_eps", "UA", "MIA", "adv"], a, scenario)
        new = f[f.label == label].set_index(["arch", "seed"])
        ref = f[f.label == base].set_index(["arch", "seed"])
        retrain = f[f.label == "retrain"].set_index(["arch", "seed"])
        parts = [
            Part("keeps ε at its original's", f"mean over layers of |100·log(ε/ε_original)|, {name(label)} minus "
                 f"{name(base)} (< 0: closer to its own original)", "log-ratio ×100", -1,
                 _judge(100 * (new.dist_own - ref.dist_own).dropna(), archs, a, -1, floors, "log_eps", 100)),
            Part("forgets: UA − UA_Retrain", "UA minus Retrain's (points); equivalence claimed", "points", 0,
                 _judge((new.UA - retrain.UA).dropna(), archs, a, 0, floors, "UA")),
            Part("forgets: MIA − MIA_Retrain", "MIA-efficacy (mean over member draws) minus Retrain's (points); "
                 "equivalence claimed", "points", 0,
                 _judge((new.MIA - retrain.MIA).dropna(), archs, a, 0, floors, "MIA")),
            Part(f"more robust than {name(base)}", f"{where} accuracy minus {name(base)}'s (points; > 0: more robust)",
                 "points", +1, _judge((new.adv - ref.adv).dropna(), archs, a, +1, floors, "adv")),
            Part("robust like Retrain", f"{where} accuracy minus Retrain's (points); equivalence claimed", "points", 0,
                 _judge((new.adv - retrain.adv).dropna(), archs, a, 0, floors, "adv")),
        ]
        notes = []
        for arch in archs:
            ratio = (new.xs(arch, level="arch").time_s / ref.xs(arch, level="arch").time_s).dropna() \
                if arch in new.index.get_level_values("arch") and arch in ref.index.get_level_values("arch") else \
                pd.Series(dtype=float)
            if len(ratio):
                notes.append(f"{arch}: time {ratio.min():.2f}–{ratio.max():.2f}× {name(base)}'s on the same seed "
                             f"(median {ratio.median():.2f}×, {len(ratio)} seeds).")
            logs = [r["stats"].get("logs", {}) for r in records
                    if r["label"] == label and r["arch"] == arch and r["scenario"] == scenario]
            shares = [lg["penalty_share_per_epoch"][0] for lg in logs if lg.get("penalty_share_per_epoch")]
            weights = sorted({r["stats"]["hyperparameters"].get("weight") for r in records
                              if r["label"] == label and r["arch"] == arch and r["scenario"] == scenario})
            if weights:
                notes.append(f"{arch}: penalty weight {', '.join(f'{w:g}' for w in weights if w is not None)}"
                             + (f"; the penalty's share of the loss in the first epoch {min(shares):.1%}–"
                                f"{max(shares):.1%}" if shares else "") + ".")
        out.append(Claim(f"{name(label)} ({scenario})", f"{name(label)} keeps ε at its original's, forgets like "
                         f"Retrain and is more robust than {name(base)}", parts, {},
                         "every criterion must be supported (equivalence criteria: equivalent or within the margin)",
                         _parts_table(parts), notes, f"methods/{method}"))
    return adjust(out, a.alpha)


def dose_response(records, analysis=None) -> list[Claim]:
    """Conjecture 2 by intervention (book/analysis_plan.md, family 3): per penalty target, the mean over the
    dose seeds of the per-seed slope of FGSM accuracy (minus RL's) on the change of ε (against RL), claimed < 0,
    margin the declared `dose_slope_margin`; the slope of clean accuracy beside it. Empty without a grid."""
    a = analysis or report.analysis_of(records)
    frame = DR.dose_frame(records, a)
    if frame.empty:
        return []
    per_seed, clean = DR.slopes(frame), DR.slopes(frame, "clean")
    archs = sorted(per_seed.arch.unique())
    where = f"{a.attack.upper()} {a.attack_eps:g}/255"
    parts, notes = [], []
    for target in sorted(per_seed.target.unique()):
        s = per_seed[per_seed.target == target].set_index(["arch", "seed"]).slope
        parts.append(Part(f"{target} penalty", f"per seed, the least-squares slope of {where} accuracy minus RL's "
                          f"(points) on the change of ε against RL (100·log-ratio, layer mean) over the weights "
                          f"w* × {', '.join(f'{m:g}' for m in a.dose_multipliers)}; mean over seeds",
                          "points per unit", -1, _judge(s, archs, a, -1, margin=a.dose_slope_margin)))
        c = clean[clean.target == target].set_index(["arch", "seed"]).slope
        for arch, v in _judge(c, archs, a, -1).items():
            span = frame[(frame.target == target) & (frame.arch == arch)]
            notes.append(f"{arch}, {target}: ε moved by {span.x.min():+.1f} to {span.x.max():+.1f} (100·log-ratio "
                         f"against RL); the slope of clean accuracy (TA) on it is {v.estimate.text(3)} points per "
                         "unit, shown because a penalty that moves ε may move clean accuracy too.")
    c = Claim("Conjecture 2 by intervention", "lowering the fairness-gap on purpose makes a model more robust",
              parts, {}, "every penalty's slope must be supported (< 0 beyond the margin)", _parts_table(parts),
              notes, "05_verdicts (dose-response)")
    return adjust([c], a.alpha)


def dose_response_reading(claims: list[Claim]) -> str:
    """What the dose-response says about Conjecture 2, in words, from its outcomes (markdown)."""
    if not claims:
        return "**Not computed**: this profile has no dose-response runs."
    outcomes = [v.verdict for p in claims[0].parts for v in p.per_arch.values()]
    if any(o == "supported" for o in outcomes) and all(o == "supported" for o in outcomes):
        return ("Lowering ε on purpose raised robustness on every architecture and penalty: the intervention agrees "
                "with a causal reading of Conjecture 2 at this scale.")
    if outcomes and all(o == "equivalent" or o.endswith(WITHIN) for o in outcomes):
        return ("Lowering ε on purpose left robustness unchanged (every slope within the declared margin): evidence "
                "against reading Conjecture 2 causally, at this scale.")
    if any(o == "contradicted" for o in outcomes):
        return ("On at least one architecture and penalty, lowering ε on purpose made the model *less* robust: "
                "evidence against a causal reading of Conjecture 2 there, at this scale.")
    return ("The slopes do not decide (see each outcome): the intervention neither confirms nor rules out a causal "
            "reading of Conjecture 2 at this scale, on these seeds.")


# --------------------------------------------------------------------------- pages

def _parts_table(parts: list[Part]) -> pd.DataFrame:
    rows = [{"arch": arch, "criterion": p.name, "effect": v.estimate.text(2), "unit": p.unit,
             "margin": v.margin_text(2), "p (direction, Holm)": _p(v.p_direction_adj),
             "p (equivalence, Holm)": _p(v.p_equivalence_adj), "outcome": v.verdict}
            for p in parts for arch, v in p.per_arch.items()]
    return pd.DataFrame(rows).set_index(["arch", "criterion"]) if rows else pd.DataFrame()


def scorecard(claims: list[Claim]) -> pd.DataFrame:
    """One row per claim, part and architecture: verdict, the part's outcome, effect with its (unadjusted)
    interval, seeds, margin and the Holm-adjusted p-values of both tests."""
    rows = []
    for c in claims:
        for p in c.parts:
            for arch, v in p.per_arch.items():
                rows.append({"claim": c.claim, "arch": arch, "part": p.name, "verdict": c.verdicts.get(arch, v.verdict),
                             "part outcome": v.verdict, "effect [95% interval]": v.estimate.text(2).rsplit(" (", 1)[0],
                             "unit": p.unit, "seeds": v.estimate.n, "margin": v.margin_text(2),
                             "p direction (Holm)": _p(v.p_direction_adj if v.adjusted else v.p_direction),
                             "p equivalence (Holm)": _p(v.p_equivalence_adj if v.adjusted else v.p_equivalence),
                             "overall": c.overall})
    return pd.DataFrame(rows).set_index(["claim", "arch", "part"]) if rows else pd.DataFrame()


def glance(claims: list[Claim]) -> pd.DataFrame:
    """The scorecard at a glance: one row per claim, its verdict per architecture, the overall verdict and
    the seeds it rests on (for the book's first page)."""
    archs = list(dict.fromkeys(a for c in claims for a in c.verdicts))
    rows = []
    for c in claims:
        seeds = sorted({v.estimate.n for p in c.parts for v in p.per_arch.values()})
        rows.append({"claim": c.claim, "the paper says": c.statement, **{a: c.verdicts.get(a, "—") for a in archs},
                     "overall": c.overall,
                     "seeds": "–".join(map(str, dict.fromkeys([seeds[0], seeds[-1]]))) if seeds else "0"})
    return pd.DataFrame(rows).set_index("claim") if rows else pd.DataFrame()


def what_would_change(v: ArchVerdict, unit: str = "") -> str:
    """One sentence on what would change this outcome, from its numbers."""
    e = v.estimate
    if not e.has_interval:
        return f"It rests on {e.seeds_text}; an interval needs at least {e.min_n} seeds."
    floor = math.isfinite(v.margin)
    if v.verdict.endswith(WITHIN):
        return (f"The effect is significant but smaller than the margin ±{v.margin:.2f} {unit}: practically no "
                "effect; a larger effect would make it a plain difference.")
    if v.verdict == "equivalent":
        return (f"The effect lies within ±{v.margin:.2f} {unit}; a margin measured smaller (more Retrains) "
                "or an interval that widens with more seeds could make it inconclusive.")
    if v.verdict in ("supported", "contradicted", "different"):
        clear = min(abs(e.lo), abs(e.hi))
        return (f"The interval clears 0 by {clear:.2f} {unit}; a shift of the mean by that much, or a wider interval, "
                "would make it inconclusive.")
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
    return ("At the observed spread over seeds, " + "; ".join(hints) + " (before the multiplicity adjustment).") \
        if hints else "The interval includes 0; more seeds would narrow it."


MEANING = {
    "supported": "the data agree with the claim",
    "contradicted": "the data show the opposite of the claim",
    "equivalent": "the effect is no larger than the gap between two Retrains: practically none",
    "inconclusive": "the data cannot tell",
    "supported" + WITHIN: "an effect in the claimed direction, but smaller than the gap between two Retrains",
    "contradicted" + WITHIN: "an effect against the claim, but smaller than the gap between two Retrains",
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
    """A claim's section: what is measured, the outcome per architecture with its p-values, what
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
    """The statistical rules with the profile's values (markdown), for the verdicts page; the full
    plan is the page *How the verdicts are decided*."""
    a = analysis
    return "\n".join([
        "The rules are declared in [How the verdicts are decided](analysis_plan.md), committed before the results; "
        "in short:",
        f"- **Unit**: the seed. Every effect is computed within a seed, then averaged over seeds with a {a.level:.0%} "
        f"Student-t interval (shown unadjusted). With fewer than {a.min_seeds} seeds no interval is drawn.",
        "- **Re-referenced**: a change of ε is taken against the model's own original, per layer, as "
        "100·log(ε/ε_original), then averaged over layers.",
        "- **Margin**: the Retrain-vs-Retrain noise floor √2·σ_R, σ_R pooled over every Retrain that shares a split "
        f"and taken at its one-sided {a.floor_bound:.0%} lower confidence bound; UA class-wise "
        f"±{a.margin_ua_class:g} point and correlations |ρ| < {a.margin_rho:g}, declared.",
        "- **Two tests per part**: direction (t-test against 0) and equivalence (two one-sided tests against ± the "
        f"margin), Holm-adjusted over the family of the paper's claims, at α = {a.alpha:g}.",
        "- **Outcomes**: *supported* / *contradicted* (significant, not equivalent); *equivalent* (equivalent, not "
        "significant); *supported/contradicted, within the noise floor* (both); *inconclusive* (neither). A claim "
        "of several parts is supported only if every part is.",
        f"- **Declared**: fairness-gap from σ `{a.definition}`, {a.class_set} classes; robustness "
        f"{a.attack.upper()} at {a.attack_eps:g}/255; C2 on the partial correlation given clean accuracy; C5 at "
        f"k = {a.c5_k}; a model is *collapsed* when its TA is below {a.collapse_fraction:.0%} of its own original's.",
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
