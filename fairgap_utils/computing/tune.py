"""The protocol's learning-rate search: each approximate method's rate, per (architecture, scenario).

    python -m fairgap_utils tune --profile cpu [--launcher local --jobs 2]

The standard protocol of this literature (SalUn, l1-sparse) tunes each method's learning
rate in [1e-4, 1e-1] for the smallest Avg. Gap to Retrain. Here: every approximate method
of the profile (all but Retrain) runs at each rate of `Profile.lr_grid` (default 5 rates,
log-spaced from 1e-4 to 1e-1) on one seed (the profile's first, or `--seeds S`), with all
its other hyperparameters at the profile's values. Each run is measured for UA, RA, TA
and MIA-efficacy only (the search needs nothing else), and the rate with the smallest
Avg. Gap to that seed's Retrain is chosen (a tie goes to the smaller rate).

Units (through the same launchers as `compute`): the original per architecture, Retrain
per scenario (both are the compute stage's own results), and one grid per (architecture,
scenario, method) after its original; a last step writes the outcome.

Files, beside the results:
- `results/<profile>/tuning/<arch>/<scenario>/<method>-lr<rate>.json`: one grid point
  (keyed by its configuration, so an interrupted search resumes);
- `results/<profile>/tuning/<arch>/<scenario>.json`: the whole grid and the chosen rates.

A profile with `tuned_lr=True` then computes each approximate method at its chosen rate
(`with_tuned_rates`): the rate enters the method's hyperparameters and so its result key.

KeepGap's weight (`python -m fairgap_utils tune --profile cpu --methods keep_gap`), in a profile
with `keep_gap_calibrated=True`, by the rule the analysis plan declares: per architecture and
target (`deviation`, `spread`), on the profile's first seed (or `--seeds S`), class-wise, the
largest weight of `AnalysisConfig.keep_gap_weights` whose accuracy on the validation images of
the retained classes (`split.x_val`, never the test set) is within
`AnalysisConfig.keep_gap_val_margin` points of RL's (RL with KeepGap's own epochs, rate and
batches: KeepGap at weight 0). One unit per architecture computes RL and every grid point:
- `results/<profile>/tuning/<arch>/class/keep_gap-rl.json` and
  `.../keep_gap-<target>-w<weight>.json`: one point each (validation accuracy, the
  penalty's logs; keyed, so an interrupted calibration resumes);
- `results/<profile>/tuning/<arch>/keep_gap.json`: the outcome, the chosen weight per target.
`with_tuned_rates` then sets `Profile.keep_gap_weight` ({target: weight}) per architecture, in
both scenarios: `pipeline.runs_for` runs KeepGap, its `spread` variant and the dose-response
grid at these weights, so the weight enters their hyperparameters and result keys. In such a
profile KeepGap's learning rate is not searched: its other hyperparameters are the profile's.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import NamedTuple

import torch

from .. import data as D
from .. import unlearn
from ..config import Profile
from ..errors import FairgapError
from ..metrics import METRICS, avg_gap, unlearning_metrics
from ..registries import method_overrides, methods_of
from ..train import accuracy, seed_everything
from ..unlearn import METHODS
from . import artifacts as A
from . import launcher as L
from . import pipeline as P
from . import stage
from .keys import original_key, point_key
from .tuned import (KEEP_GAP, KEEP_GAP_OUTCOME, KEEP_GAP_SCENARIO, calibrates_keep_gap, folder,  # noqa: F401
                    keep_gap_hyperparameters, keep_gap_outcome_path, keep_gap_point_path, keep_gap_runs,
                    keep_gap_targets, keep_gap_weights, outcome_path, point_path, rate_hyperparameters, tunable,
                    with_tuned_rates)


def _missing(profile, arch, seed, scenario, method, results) -> list[tuple[float, Path, str]]:
    out = []
    for lr in profile.lr_grid:
        key = point_key(profile, arch, seed, scenario, method, rate_hyperparameters(profile, method, lr))
        path = point_path(profile, arch, scenario, method, lr, results)
        if A.load_json(path, key) is None:
            out.append((lr, path, key))
    return out


def run_grid(profile: Profile, arch: str, seed: int, scenario: str, method: str, results=None, cache=None,
             data_path=None, device=None) -> list[Path]:
    """One unit: `method` at every rate of the grid, from the original's checkpoint; one file per rate."""
    todo = _missing(profile, arch, seed, scenario, method, results)
    if not todo:
        return [point_path(profile, arch, scenario, method, lr, results) for lr in profile.lr_grid]
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":  # as stage.compute, so a chosen rate's numbers reproduce there
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    split = D.make_split(profile, seed, scenario, device, data_path)
    original, _ = P._original_model(profile, arch, seed, original_key(profile, arch, seed), split, cache, device)
    ctx = unlearn.Context(original=original, train_config=profile.train_config(arch), arch=arch, seed=seed,
                  compile=profile.compile)
    for lr, path, key in todo:
        seed_everything(seed)  # as the pipeline before every method run
        model, stats = unlearn.run_method(method, original, split, ctx,
                                          {**method_overrides(profile, method), "lr": lr})
        start = time.perf_counter()
        metrics = unlearning_metrics(model, split, profile.eval.batch_size)
        A.save_json(path, {"key": key, "profile": profile.name, "arch": arch, "seed": seed, "scenario": scenario,
                           "method": method, "lr": lr, "hyperparameters": stats["hyperparameters"],
                           "metrics": metrics, "time_s": stats["time_s"], "eval_time_s": time.perf_counter() - start,
                           "provenance": P.provenance()})
    return [point_path(profile, arch, scenario, method, lr, results) for lr in profile.lr_grid]


def choose(points: list[dict]) -> dict:
    """The point with the smallest Avg. Gap (NaN counts as worst; a tie goes to the smaller rate)."""
    def gap(p):
        return math.inf if p["avg_gap"] is None or math.isnan(p["avg_gap"]) else p["avg_gap"]
    return min(sorted(points, key=lambda p: p["lr"]), key=gap)


def summarize(profile: Profile, archs, seed: int, scenarios, results=None, cache=None, data_path=None) -> list[Path]:
    """Write the outcome of every (arch, scenario) from the grid points and Retrain on disk."""
    written = []
    for arch in archs:
        for scenario in scenarios:
            files = stage.compute(profile, [arch], [seed], [scenario], ["retrain"], results, cache, data_path)
            retrain = A.load_json(next(p for p in files if Path(p).stem == "retrain"))
            methods = {}
            for method in tunable(profile):
                points = []
                for lr in profile.lr_grid:
                    key = point_key(profile, arch, seed, scenario, method, rate_hyperparameters(profile, method, lr))
                    r = A.load_json(point_path(profile, arch, scenario, method, lr, results), key)
                    if r is None:
                        break
                    points.append({"lr": lr, "key": key, "time_s": r["time_s"],
                                   "avg_gap": avg_gap(r["metrics"], retrain["metrics"]),
                                   **{k: r["metrics"][k] for k in METRICS}})
                else:
                    best = choose(points)
                    methods[method] = {"lr": best["lr"], "avg_gap": best["avg_gap"], "key": best["key"],
                                       "points": points}
            path = outcome_path(profile, arch, scenario, results)
            A.save_json(path, {"profile": profile.name, "arch": arch, "scenario": scenario, "seed": seed,
                               "grid": list(profile.lr_grid), "criterion": "smallest Avg. Gap to Retrain",
                               "retrain": {k: retrain["metrics"][k] for k in METRICS}, "methods": methods})
            written.append(path)
    return written


def units(profile: Profile, archs=None, seed=None, scenarios=None, methods=None, results=None, cache=None,
          data_path=None):
    """(units, finish) of the search: originals, Retrains, the grids still incomplete, then `summarize`."""
    archs, scenarios = list(archs or profile.archs), list(scenarios or profile.scenarios)
    seed = profile.seeds[0] if seed is None else seed
    methods = tunable(profile, methods)
    base = L.compute_units(profile, archs, [seed], scenarios, ["retrain"], results, cache, data_path)
    common = {k: base[0].kwargs[k] for k in ("results", "cache", "data_path")}
    grids = [L.Job(f"tune {method} {arch} seed{seed} {scenario}", run_grid,
                    dict(common, profile=profile, arch=arch, seed=seed, scenario=scenario, method=method),
                    after=f"original {arch} seed{seed}")
             for arch in archs for scenario in scenarios for method in methods
             if _missing(profile, arch, seed, scenario, method, results)]
    finish = L.Job(f"tune outcome {profile.name}", summarize,
                    dict(common, profile=profile, archs=archs, seed=seed, scenarios=scenarios))
    return base + grids, finish


def tune(profile: Profile, archs=None, seed=None, scenarios=None, methods=None, results=None, cache=None,
         data_path=None, launcher=None):
    """Run the search through a launcher (default: this process); returns the launcher's Report."""
    launcher = launcher or L.Launcher()
    keep_gap = calibrates_keep_gap(profile, methods)
    if not tunable(profile, methods) and not keep_gap:
        raise FairgapError(f"no approximate method with a learning rate among {list(methods or methods_of(profile))}; "
                           f"choices: {', '.join(tunable(profile, list(METHODS)))}"
                           + (", keep_gap (its weight)" if profile.keep_gap_calibrated else ""))
    work, finishers = [], []
    if tunable(profile, methods):
        lr_work, lr_finish = units(profile, archs, seed, scenarios, methods, results, cache, data_path)
        work, finishers = lr_work, [lr_finish]
    if keep_gap:                                   # class-wise whatever the scenarios: the plan's rule
        kg_work, kg_finish = keep_gap_units(profile, archs, seed, results, cache, data_path)
        names = {u.name for u in work}             # one unit per original
        work += [u for u in kg_work if u.name not in names]
        finishers.append(kg_finish)
    finish = finishers[0] if len(finishers) == 1 else L.Job(f"tune outcomes {profile.name}", _finish_all,
                                                             {"finishers": finishers})
    return L.run(work, launcher, cache, finish=finish)


def _finish_all(finishers) -> list:
    """The last unit when the search does both: each outcome in turn."""
    return [path for u in finishers for path in u.fn(**u.kwargs)]


# --------------------------------------------------------------------------- KeepGap's weight


class KeepGapPoint(NamedTuple):
    """One calibration point: KeepGap at (target, weight), or (target None) the RL reference."""
    target: str | None
    weight: float | None
    method: str
    hyperparameters: dict
    path: Path
    key: str


def keep_gap_points(profile: Profile, arch: str, seed: int, results=None) -> list[KeepGapPoint]:
    """Every calibration point the rule may need, in the order the search takes them: the RL reference
    first, then per target (deviation, spread) the weights of `keep_gap_weights` from the largest down."""
    out = []
    for target, weight in [(None, None)] + [(t, float(w)) for t in keep_gap_targets()
                                            for w in sorted(profile.analysis.keep_gap_weights, reverse=True)]:
        method, hp = keep_gap_hyperparameters(profile, target, weight)
        out.append(KeepGapPoint(target, weight, method, hp, keep_gap_point_path(profile, arch, target, weight, results),
                                point_key(profile, arch, seed, KEEP_GAP_SCENARIO, method, hp)))
    return out


def validation_accuracy(model, split, batch_size: int) -> dict:
    """Accuracy (%) on the validation images of the retained classes (`val_acc`) and of the forgotten class
    (`val_acc_forget`, None under random forgetting): held out of D_r and D_f alike; the test set is never read."""
    if split.forget_class is None:
        return {"val_acc": accuracy(model, split.x_val, split.y_val, batch_size), "val_acc_forget": None}
    keep = split.y_val != split.forget_class
    return {"val_acc": accuracy(model, split.x_val[keep], split.y_val[keep], batch_size),
            "val_acc_forget": accuracy(model, split.x_val[~keep], split.y_val[~keep], batch_size)}


def search_keep_gap(profile: Profile, arch: str, seed: int, results=None, compute=None) -> dict:
    """The plan's rule, walked: RL's point, then per target the weights from the largest down; the first
    whose `val_acc` is within `keep_gap_val_margin` of RL's is the largest such weight, so the walk stops
    there (the smaller weights cannot change the answer and are not computed).

    `compute(point)` makes a missing point's record; without it a missing point ends that target's walk.
    Returns {"rl": record or None, "targets": {target: {"weight": the chosen weight or None, "done": whether
    the walk ended (a weight found or the grid exhausted), "walk": [(point, record), ...]}}}.
    """
    margin = profile.analysis.keep_gap_val_margin
    points = keep_gap_points(profile, arch, seed, results)

    def get(point):
        record = A.load_json(point.path, point.key)
        return compute(point) if record is None and compute is not None else record
    rl_record = get(points[0])
    out = {"rl": rl_record, "targets": {}}
    for target in keep_gap_targets():
        walk, weight, done = [], None, rl_record is not None
        for point in (p for p in points[1:] if p.target == target):
            record = get(point) if rl_record is not None else None
            if record is None:
                done = False
                break
            walk.append((point, record))
            if abs(record["val_acc"] - rl_record["val_acc"]) <= margin:
                weight = point.weight
                break
        out["targets"][target] = {"weight": weight, "done": done, "walk": walk}
    return out


def run_keep_gap_grid(profile: Profile, arch: str, seed: int, results=None, cache=None, data_path=None,
                      device=None) -> list[Path]:
    """One unit: RL, then KeepGap at the weights the rule's walk needs (`search_keep_gap`), from the original's
    checkpoint, each measured on the validation images only; one file per point."""
    state = {}

    def compute(point: KeepGapPoint) -> dict:
        if not state:
            device_ = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
            if device_.type == "cuda":  # as stage.compute, so a chosen weight's numbers reproduce there
                torch.backends.cudnn.benchmark = True
                torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
            split = D.make_split(profile, seed, KEEP_GAP_SCENARIO, device_, data_path)
            original, _ = P._original_model(profile, arch, seed, original_key(profile, arch, seed), split, cache,
                                            device_)
            state.update(split=split, original=original, ctx=unlearn.Context(
                original=original, train_config=profile.train_config(arch), arch=arch, seed=seed,
                compile=profile.compile))
        seed_everything(seed)  # as the pipeline before every method run
        model, stats = unlearn.run_method(point.method, state["original"], state["split"], state["ctx"],
                                  point.hyperparameters)
        start = time.perf_counter()
        measured = validation_accuracy(model, state["split"], profile.eval.batch_size)
        record = {"key": point.key, "profile": profile.name, "arch": arch, "seed": seed,
                  "scenario": KEEP_GAP_SCENARIO, "method": point.method, "target": point.target,
                  "weight": point.weight, "hyperparameters": stats["hyperparameters"], **measured,
                  "logs": stats["logs"], "time_s": stats["time_s"], "eval_time_s": time.perf_counter() - start,
                  "provenance": P.provenance()}
        A.save_json(point.path, record)
        return record
    found = search_keep_gap(profile, arch, seed, results, compute)
    return [keep_gap_point_path(profile, arch, None, None, results)] + [
        p.path for t in found["targets"].values() for p, _ in t["walk"]]


def choose_weight(points: list[dict], reference: float, margin: float):
    """The largest weight whose `val_acc` is within `margin` points of `reference` (RL's); None if none is."""
    within = [p["weight"] for p in points if abs(p["val_acc"] - reference) <= margin]
    return max(within) if within else None


def summarize_keep_gap(profile: Profile, archs, seed: int, results=None) -> list[Path]:
    """Write each architecture's outcome (the chosen weight per target) from its points on disk."""
    a = profile.analysis
    written = []
    for arch in archs:
        found = search_keep_gap(profile, arch, seed, results)
        if found["rl"] is None or not all(t["done"] for t in found["targets"].values()):
            raise FairgapError(f"KeepGap's calibration of {arch} seed {seed} is not finished; rerun "
                               f"`python -m fairgap_utils tune --profile {profile.name} --methods keep_gap`")
        rl_record, rl_key = found["rl"], keep_gap_points(profile, arch, seed, results)[0].key
        targets = {}
        for target, entry in found["targets"].items():
            rows = [{"weight": p.weight, "key": p.key, "val_acc": r["val_acc"], "val_acc_forget": r["val_acc_forget"],
                     "val_acc_minus_rl": r["val_acc"] - rl_record["val_acc"], "time_s": r["time_s"],
                     "penalty_per_epoch": r["logs"]["penalty_per_epoch"],
                     "penalty_share_per_epoch": r["logs"]["penalty_share_per_epoch"]} for p, r in entry["walk"]]
            weight = choose_weight(rows, rl_record["val_acc"], a.keep_gap_val_margin)
            assert weight == entry["weight"]           # the walk and the rule agree
            chosen = next((r for r in rows if r["weight"] == weight), None)
            targets[target] = {"weight": weight, "key": None if chosen is None else chosen["key"],
                               "penalty_share_first_epoch": None if chosen is None
                               else chosen["penalty_share_per_epoch"][0], "points": rows}
        path = keep_gap_outcome_path(profile, arch, results)
        A.save_json(path, {"profile": profile.name, "arch": arch, "scenario": KEEP_GAP_SCENARIO, "seed": seed,
                           "grid": [float(w) for w in a.keep_gap_weights], "margin": a.keep_gap_val_margin,
                           "criterion": "the largest weight whose accuracy on the validation images of the retained "
                                        "classes is within the margin (points) of RL's; the weights are tried from "
                                        "the largest down, so the points below the chosen one are not computed",
                           "rl": {"key": rl_key, "val_acc": rl_record["val_acc"],
                                  "val_acc_forget": rl_record["val_acc_forget"], "time_s": rl_record["time_s"]},
                           "targets": targets})
        written.append(path)
    return written


def keep_gap_units(profile: Profile, archs=None, seed=None, results=None, cache=None, data_path=None):
    """(units, finish) of KeepGap's calibration: the originals, the walks not yet finished, then the outcome."""
    archs = list(archs or profile.archs)
    seed = profile.seeds[0] if seed is None else seed
    base = L.compute_units(profile, archs, [seed], [KEEP_GAP_SCENARIO], [], results, cache, data_path)
    common = {k: base[0].kwargs[k] for k in ("results", "cache", "data_path")}

    def finished(arch):
        found = search_keep_gap(profile, arch, seed, common["results"])
        return found["rl"] is not None and all(t["done"] for t in found["targets"].values())
    grids = [L.Job(f"tune keep_gap {arch} seed{seed} {KEEP_GAP_SCENARIO}", run_keep_gap_grid,
                    dict(common, profile=profile, arch=arch, seed=seed), after=f"original {arch} seed{seed}")
             for arch in archs if not finished(arch)]
    finish = L.Job(f"tune keep_gap outcome {profile.name}", summarize_keep_gap,
                    dict(profile=profile, archs=archs, seed=seed, results=common["results"]))
    return base + grids, finish


def keep_gap_frame(profile_name: str, results=None):
    """One row per calibration point of every architecture: arch, target, weight, validation accuracies,
    the difference to RL's, the penalty's share of the loss in the first epoch, chosen."""
    import pandas as pd  # lazy: pandas only for the book's tables of the searches
    rows = []
    for path in sorted((A.results_dir(results) / profile_name / "tuning").glob(f"*/{KEEP_GAP_OUTCOME}")):
        o = A.load_json(path)
        if o is None or "targets" not in o:
            continue
        for target, entry in o["targets"].items():
            for p in entry["points"]:
                rows.append({"arch": o["arch"], "seed": o["seed"], "target": target, "weight": p["weight"],
                             "val_acc": p["val_acc"], "rl_val_acc": o["rl"]["val_acc"],
                             "val_acc_minus_rl": p["val_acc_minus_rl"],
                             "penalty_share_first_epoch": p["penalty_share_per_epoch"][0],
                             "within_margin": abs(p["val_acc_minus_rl"]) <= o["margin"],
                             "chosen": p["weight"] == entry["weight"]})
    return pd.DataFrame(rows, columns=["arch", "seed", "target", "weight", "val_acc", "rl_val_acc",
                                       "val_acc_minus_rl", "penalty_share_first_epoch", "within_margin", "chosen"])


__all__ = ["tune", "tunable", "run_grid", "summarize", "choose", "with_tuned_rates",
           "units", "calibrates_keep_gap", "keep_gap_units", "run_keep_gap_grid", "summarize_keep_gap",
           "choose_weight", "search_keep_gap", "keep_gap_points", "keep_gap_weights", "keep_gap_frame",
           "validation_accuracy", "keep_gap_runs"]
