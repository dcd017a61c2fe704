"""KeepGap (beyond the paper) as the book reports it: what came out, in words and in one table, its
recipe and how its weight was chosen. Everything is read from the result files and from the
calibration outcome `tuning/<arch>/keep_gap.json` beside them; nothing is typed.

- `claims`: the criteria of the analysis plan (`verdicts.beyond_the_paper`) for KeepGap's runs at its
  calibrated weights (one per penalty target; the dose-response grid is judged on its own), Holm-adjusted
  as one family (the plan's family 2: every criterion, both targets, architectures and scenarios).
- `glance`: one row per run, scenario and architecture: the weight, the penalty's share of the loss in
  the first epoch, the change of ε from the model's own original beside RL's, each criterion's effect
  and the time against RL; `reading`: the same in plain words, positive or negative.
- `recipe`, `calibration_table`: the method page's statement of the recipe and the calibration.
- `recorded_hyperparameters`: where the result files of a method ran at other values than the registry's
  defaults with the profile's overrides (KeepGap's calibrated weight is set per architecture).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from . import dose_response as DR
from . import report, verdicts
from .stats import WITHIN, as_claimed, seed_interval

METHOD, BASE = DR.METHOD, DR.BASE
TARGETS = {"deviation": "each retained class's σ kept near the original model's",
           "spread": "a smooth ε (max − min of the classes' relative σ) pushed towards 0"}
LAYERS = {"all": "all normalization layers", "first_half": "the first half of the normalization layers",
          "last_half": "the last half of the normalization layers"}


def _hp(r: dict) -> dict:
    return r["stats"]["hyperparameters"]


def calibrated_labels(records) -> list[str]:
    """The labels of KeepGap's runs at a calibrated weight (`keep_gap`, `keep_gap-spread`), the default
    target first; the dose-response grid's other weights are left out."""
    # `keep_gap` (the default target) or `keep_gap-<target>`, as the planner names them; read from the
    # labels so that no registry (and no torch) is imported to find the default target
    labels = {r["label"] for r in records
              if r["method"] == METHOD and r["label"] in (METHOD, f"{METHOD}-{_hp(r)['target']}")}
    return sorted(labels, key=lambda label: (label != METHOD, label))


def claims(records, analysis=None) -> list:
    """The plan's KeepGap criteria for each calibrated run, per scenario, Holm-adjusted as one family."""
    a = analysis or report.analysis_of(records)
    out = [c for label in calibrated_labels(records)
           for c in verdicts.beyond_the_paper(records, METHOD, BASE, a, label)]
    return verdicts.adjust(out, a.alpha)


def _runs(records, label: str, scenario: str, arch: str) -> list[dict]:
    return [r for r in records if r["label"] == label and r["scenario"] == scenario and r["arch"] == arch]


def _span(values, fmt) -> str:
    values = sorted(set(values))
    return "—" if not values else fmt(values[0]) if len(values) == 1 else f"{fmt(values[0])}–{fmt(values[-1])}"


def _first_shares(runs) -> list[float]:
    return [r["stats"]["logs"]["penalty_share_per_epoch"][0] for r in runs
            if r["stats"].get("logs", {}).get("penalty_share_per_epoch")]


def tuning_folder(records, results=None) -> Path:
    """Where the profile's calibration outcomes are: `tuning/` in the folder the records were read from."""
    cov = getattr(records, "coverage", None)
    if cov is not None:
        return Path(cov.folder) / "tuning"
    if results is not None:
        return Path(results) / records[0]["profile"] / "tuning"
    return Path(__file__).resolve().parents[2] / "results" / records[0]["profile"] / "tuning"


def calibration_files(records, results=None) -> list[Path]:
    """KeepGap's calibration outcomes (`tuning/<arch>/keep_gap.json`) of the records' architectures, those present."""
    folder = tuning_folder(records, results)
    return [folder / arch / f"{METHOD}.json" for arch in sorted({r["arch"] for r in records})
            if (folder / arch / f"{METHOD}.json").is_file()]


def calibration(records, results=None) -> dict:
    """{arch: the calibration outcome of KeepGap} for the records' architectures that have a readable one."""
    out = {}
    for path in calibration_files(records, results):
        try:
            out[path.parent.name] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    return out


def _chosen(outcomes: dict, arch: str, target: str):
    return (outcomes.get(arch, {}).get("targets", {}).get(target) or {}).get("weight")


def glance(claim_list, records, analysis=None, results=None) -> pd.DataFrame:
    """KeepGap at a glance: one row per calibrated run, scenario and architecture, every figure the plan
    judges it on (mean over seeds with its 95% interval, unadjusted) and its verdict (Holm-adjusted)."""
    a = analysis or report.analysis_of(records)
    outcomes = calibration(records, results)
    rows = []
    for label in calibrated_labels(records):
        target = _hp(next(r for r in records if r["label"] == label))["target"]
        for scenario in sorted({r["scenario"] for r in records if r["label"] == label}):
            c = next((c for c in claim_list if c.claim == f"{verdicts.name(label)} ({scenario})"), None)
            f = report.model_frame(records, a, scenario)
            for arch in sorted({r["arch"] for r in records if r["label"] == label and r["scenario"] == scenario}):
                runs = _runs(records, label, scenario, arch)
                own = f[f.arch == arch].set_index(["seed", "label"]).d_own * 100
                new = own.xs(label, level="label")
                base = own.xs(BASE, level="label") if BASE in set(f[f.arch == arch].label) else None
                ratio = (f[(f.arch == arch) & (f.label == label)].set_index("seed").time_s
                         / f[(f.arch == arch) & (f.label == BASE)].set_index("seed").time_s).dropna()
                row = {"run": verdicts.name(label), "scenario": scenario, "arch": arch,
                       "weight": _span((_hp(r)["weight"] for r in runs), lambda w: f"{w:g}"),
                       "chosen on validation": (f"{_chosen(outcomes, arch, target):g}"
                                                if _chosen(outcomes, arch, target) is not None else "—"),
                       "penalty share, epoch 1": _span(_first_shares(runs), lambda s: f"{s:.1%}"),
                       "change of ε from own original": seed_interval(new, a.level, a.min_seeds).text(1),
                       f"{verdicts.name(BASE)}'s change of ε (same seeds)":
                           seed_interval(base.reindex(new.index), a.level, a.min_seeds).text(1)
                           if base is not None else "—"}
                for p in (c.parts if c else []):
                    v = p.per_arch.get(arch)
                    row[p.name] = v.estimate.text(2).rsplit(" (", 1)[0] if v else "—"
                row[f"time / {verdicts.name(BASE)}'s"] = (f"{ratio.median():.2f}× (median, {len(ratio)} seed"
                                                         f"{'s' if len(ratio) != 1 else ''})" if len(ratio) else "—")
                row["seeds"] = len(runs)
                row["verdict"] = c.verdicts.get(arch, "—") if c else "—"
                rows.append(row)
    return pd.DataFrame(rows).set_index(["run", "scenario", "arch"]) if rows else pd.DataFrame()


def _part_reading(p, v) -> tuple[str, str]:
    """(met | not met | met, within the noise floor | undecided, the phrase) of one criterion on one architecture."""
    outcome = as_claimed(v.verdict, p.direction)
    phrase = f"{p.name} ({v.estimate.text(2)} {p.unit})"
    if outcome == "supported":
        return "met", phrase
    if outcome == "supported" + WITHIN:
        return "met only within the noise floor", phrase
    if outcome in ("contradicted", "contradicted" + WITHIN, "equivalent"):
        why = {"equivalent": ": no effect beyond the noise floor", "contradicted": ": the opposite"}.get(
            outcome, ": the opposite, within the floor")
        return "not met", phrase + why
    return "undecided", phrase


WORD = {"supported": "positive", "contradicted": "negative", "equivalent": "no effect",
        "inconclusive": "not decided"}


def reading(claim_list, records) -> str:
    """What came out for KeepGap, plainly: per run, scenario and architecture, positive or negative, and
    which criteria were met, not met or undecided, with their figures (markdown)."""
    if not claim_list:
        return f"**Not computed**: this profile has no results for `{METHOD}` at a calibrated weight."
    lines = []
    which = {f"{verdicts.name(label)} ({scenario})": (label, scenario) for label in calibrated_labels(records)
             for scenario in sorted({r["scenario"] for r in records if r["label"] == label})}
    for c in claim_list:
        label, scenario = which.get(c.claim, (None, None))
        for arch, verdict in c.verdicts.items():
            runs = _runs(records, label, scenario, arch) if label else []
            if not runs:
                lines.append(f"- **{c.claim}, {arch}: not computed yet** (no result file of this run).")
                continue
            groups: dict[str, list[str]] = {}
            for p in c.parts:
                if arch in p.per_arch:
                    kind, phrase = _part_reading(p, p.per_arch[arch])
                    groups.setdefault(kind, []).append(phrase)
            weight = _span((_hp(r)["weight"] for r in runs), lambda w: f"{w:g}")
            shares = _first_shares(runs)
            share = (f", the penalty {_span(shares, lambda s: f'{s:.1%}')} of the loss in the first epoch"
                     if shares else "")
            head = (f"- **{c.claim}, {arch}: {WORD.get(verdict, verdict)}** ({verdict}; weight {weight}{share}, "
                    f"{len(runs)} seed{'s' if len(runs) != 1 else ''}).")
            kinds = ("met", "met only within the noise floor", "not met", "undecided")
            body = " ".join(f"{kind.capitalize()}: {'; '.join(groups[kind])}." for kind in kinds if kind in groups)
            lines.append(f"{head} {_own_change(records, label, scenario, arch)}{body}")
    return "\n".join(lines)


def _own_change(records, label: str, scenario: str, arch: str, analysis=None) -> str:
    """'Its ε moved by … from its own original (RL's, same seeds: …) …. ' (layer-mean 100·log-ratio, over seeds)."""
    a = analysis or report.analysis_of(records)
    f = report.model_frame([r for r in records if r["arch"] == arch], a, scenario)
    own = f.set_index(["seed", "label"]).d_own * 100
    if label not in set(f.label):
        return ""
    new = own.xs(label, level="label").dropna()
    text = f"Its ε moved by {seed_interval(new, a.level, a.min_seeds).text(1)} from its own original"
    if BASE in set(f.label):
        base = own.xs(BASE, level="label").reindex(new.index)
        text += f" ({verdicts.name(BASE)}'s, same seeds: {seed_interval(base, a.level, a.min_seeds).text(1)})"
    return text + " (layer-mean 100·log(ε/ε_original)). "


def dose_slopes(dose_claims) -> str:
    """The dose-response's slopes, one line per penalty and architecture: the mean per-seed slope with its
    interval and its outcome (markdown, below `verdicts.dose_response_reading`); '' without a grid."""
    lines = []
    for c in dose_claims:
        for p in c.parts:
            for arch, v in p.per_arch.items():
                lines.append(f"- {p.name}, {arch}: slope {v.estimate.text(2)}, in points of accuracy under the "
                             f"headline attack per unit of ε change (100·log-ratio against RL); margin "
                             f"{v.margin_text(2)}: **{v.verdict}**.")
    return "\n".join(lines)


def recipe(records, results=None) -> str:
    """KeepGap's recipe as its result files ran it, and the calibrated weights (markdown, the method page)."""
    runs = [r for r in records if r["method"] == METHOD and r["label"] in calibrated_labels(records)]
    if not runs:
        return f"**Not computed**: these results hold no run of `{METHOD}` at a calibrated weight."
    outcomes = calibration(records, results)
    lines = []
    for label in calibrated_labels(records):
        mine = [r for r in runs if r["label"] == label]
        hp = _hp(mine[0])
        same = {k: v for k, v in hp.items() if k != "weight"}
        varied = sorted({k for r in mine for k, v in _hp(r).items() if k != "weight" and same.get(k) != v})
        counts = {arch: _span((len(r["stats"]["logs"].get("penalized_layers", [])) for r in mine if r["arch"] == arch),
                              str) for arch in sorted({r["arch"] for r in mine})}
        layers = ", ".join(f"{n} on {arch}" for arch, n in counts.items())
        stats = (f"`ema` statistics (a running estimate per class, momentum {hp['sigma_momentum']:g})"
                 if hp["statistics"] == "ema" else f"`{hp['statistics']}` statistics")
        weights = "; ".join(f"{arch} {_span((_hp(r)['weight'] for r in mine if r['arch'] == arch), lambda w: f'{w:g}')}"
                            for arch in sorted({r["arch"] for r in mine}))
        lines.append(f"- **{verdicts.name(label)}** (`{label}`): {verdicts.name(BASE)} ({hp['epochs']} epochs, lr "
                     f"{hp['lr']:g}) plus the `{hp['target']}` penalty ({TARGETS.get(hp['target'], hp['target'])}) on "
                     f"{LAYERS.get(hp['layers'], hp['layers'])} ({layers}), from {stats}; weight per "
                     f"architecture: {weights}."
                     + (f" The files differ in {', '.join(varied)}." if varied else ""))
    text = "**Recipe**, as the result files ran it:\n\n" + "\n".join(lines)
    if outcomes:
        o = next(iter(outcomes.values()))
        text += (f"\n\n**The weight** was chosen by the analysis plan's rule, on seed {o['seed']}, "
                 f"{o['scenario']}-wise "
                 f"forgetting, with the validation images of the retained classes (never the test set): the largest "
                 f"of {', '.join(f'{w:g}' for w in o['grid'])} whose validation accuracy is within {o['margin']:g} "
                 "points of RL's. Chosen: "
                 + "; ".join(f"{arch}: " + ", ".join(f"{t} {e['weight']:g}" for t, e in sorted(out["targets"].items()))
                             for arch, out in outcomes.items()) + ".")
    return text


def calibration_table(records, results=None) -> pd.DataFrame:
    """Every weight the calibration tried, per architecture and target: validation accuracy against RL's,
    the penalty's share of the loss in the first epoch, and which weight was chosen."""
    rows = []
    for arch, o in calibration(records, results).items():
        for target, entry in sorted(o["targets"].items()):
            for p in sorted(entry["points"], key=lambda p: p["weight"]):
                share = p.get("penalty_share_per_epoch") or [float("nan")]
                rows.append({"arch": arch, "target": target, "weight": p["weight"],
                             "validation accuracy − RL's (points)": round(p["val_acc_minus_rl"], 2),
                             "within the margin": p["val_acc_minus_rl"] >= -o["margin"],
                             "penalty share, epoch 1": f"{share[0]:.1%}" if math.isfinite(share[0]) else "—",
                             "chosen": p["weight"] == entry["weight"]})
    return pd.DataFrame(rows).set_index(["arch", "target", "weight"]) if rows else pd.DataFrame()


def recorded_hyperparameters(records, method: str, hp: dict) -> str:
    """A note where the method's result files ran at other values than `hp` (the registry's defaults with
    the profile's overrides), per architecture and scenario, read from the files; '' where they agree."""
    diffs: dict[str, dict] = {}
    for r in records:
        if r["label"] != method:
            continue
        for k, v in _hp(r).items():
            if k in hp and hp[k] != v:
                diffs.setdefault(k, {}).setdefault(v, set()).add(f"{r['arch']} {r['scenario']}")
    if not diffs:
        return ""
    def value(v) -> str:
        return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
    parts = [f"`{k}` " + "; ".join(f"{value(v)} on {', '.join(sorted(where))}"
                                   for v, where in sorted(values.items(), key=lambda kv: str(kv[0])))
             for k, values in sorted(diffs.items())]
    return ("**The result files ran at other values** than these (read from the files): " + "; ".join(parts) + ".")


__all__ = ["claims", "calibrated_labels", "glance", "reading", "recipe", "calibration", "calibration_files",
           "calibration_table",
           "recorded_hyperparameters", "dose_slopes"]
