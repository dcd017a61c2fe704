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
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from . import artifacts as A
from .config import Profile, config_hash
from .errors import FairgapError
from .metrics import METRICS, avg_gap
from .unlearn import METHODS, hyperparameters


def tunable(profile: Profile, methods=None) -> list[str]:
    """The approximate methods of the profile that have a learning rate."""
    names = profile.methods if methods is None else methods
    return [m for m in names if not METHODS[m].exact and "lr" in METHODS[m].defaults]


def folder(profile: Profile, results=None) -> Path:
    return A.results_dir(results) / profile.name / "tuning"


def point_path(profile: Profile, arch: str, scenario: str, method: str, lr: float, results=None) -> Path:
    return folder(profile, results) / arch / scenario / f"{method}-lr{lr:g}.json"


def outcome_path(profile: Profile, arch: str, scenario: str, results=None) -> Path:
    return folder(profile, results) / arch / f"{scenario}.json"


def _hp(profile: Profile, method: str, lr: float) -> dict:
    return hyperparameters(method, {**profile.method_overrides.get(method, {}), "lr": lr})


def _point_key(profile: Profile, arch: str, seed: int, scenario: str, method: str, hp: dict) -> str:
    """The same parts as the pipeline's model key (original, scenario, method, hyperparameters, seed)."""
    from .data import CLASS_NAMES, resolve_class
    from .pipeline import RESULTS_VERSION, _keys
    forget_class = resolve_class(profile.forget_class, CLASS_NAMES[profile.dataset]) if scenario == "class" else None
    scenario_cfg = dict(scenario=scenario, forget_class=forget_class,
                        forget_fraction=profile.forget_fraction if scenario == "random" else None)
    return config_hash("tune", _keys(profile, arch, seed)[1], scenario_cfg, method, hp, seed, RESULTS_VERSION)


def _missing(profile, arch, seed, scenario, method, results) -> list[tuple[float, Path, str]]:
    out = []
    for lr in profile.lr_grid:
        key = _point_key(profile, arch, seed, scenario, method, _hp(profile, method, lr))
        path = point_path(profile, arch, scenario, method, lr, results)
        if A.load_json(path, key) is None:
            out.append((lr, path, key))
    return out


def run_grid(profile: Profile, arch: str, seed: int, scenario: str, method: str, results=None, cache=None,
             data_path=None, device=None) -> list[Path]:
    """One unit: `method` at every rate of the grid, from the original's checkpoint; one file per rate."""
    import torch
    from . import data as D
    from . import pipeline as P
    from .metrics import unlearning_metrics
    from .train import seed_everything
    from .unlearn import Context, run_method
    todo = _missing(profile, arch, seed, scenario, method, results)
    if not todo:
        return [point_path(profile, arch, scenario, method, lr, results) for lr in profile.lr_grid]
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":  # as pipeline.compute, so a chosen rate's numbers reproduce there
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    split = D.make_split(profile, seed, scenario, device, data_path)
    original, _ = P._original_model(profile, arch, seed, P._keys(profile, arch, seed)[1], split, cache, device)
    ctx = Context(original=original, train_config=profile.train_config(arch), arch=arch, seed=seed,
                  compile=profile.compile)
    for lr, path, key in todo:
        seed_everything(seed)  # as the pipeline before every method run
        model, stats = run_method(method, original, split, ctx, {**profile.method_overrides.get(method, {}), "lr": lr})
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
    from .pipeline import compute
    written = []
    for arch in archs:
        for scenario in scenarios:
            files = compute(profile, [arch], [seed], [scenario], ["retrain"], results, cache, data_path)
            retrain = A.load_json(next(p for p in files if Path(p).stem == "retrain"))
            methods = {}
            for method in tunable(profile):
                points = []
                for lr in profile.lr_grid:
                    key = _point_key(profile, arch, seed, scenario, method, _hp(profile, method, lr))
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
    from . import launcher as L
    archs, scenarios = list(archs or profile.archs), list(scenarios or profile.scenarios)
    seed = profile.seeds[0] if seed is None else seed
    methods = tunable(profile, methods)
    base = L.compute_units(profile, archs, [seed], scenarios, ["retrain"], results, cache, data_path)
    common = {k: base[0].kwargs[k] for k in ("results", "cache", "data_path")}
    grids = [L.Unit(f"tune {method} {arch} seed{seed} {scenario}", run_grid,
                    dict(common, profile=profile, arch=arch, seed=seed, scenario=scenario, method=method),
                    after=f"original {arch} seed{seed}")
             for arch in archs for scenario in scenarios for method in methods
             if _missing(profile, arch, seed, scenario, method, results)]
    finish = L.Unit(f"tune outcome {profile.name}", summarize,
                    dict(common, profile=profile, archs=archs, seed=seed, scenarios=scenarios))
    return base + grids, finish


def tune(profile: Profile, archs=None, seed=None, scenarios=None, methods=None, results=None, cache=None,
         data_path=None, launcher=None):
    """Run the search through a launcher (default: this process); returns the launcher's Report."""
    from . import launcher as L
    launcher = launcher or L.Launcher()
    if not tunable(profile, methods):
        raise FairgapError(f"no approximate method with a learning rate among {list(methods or profile.methods)}; "
                           f"choices: {', '.join(tunable(profile, list(METHODS)))}")
    work, finish = units(profile, archs, seed, scenarios, methods, results, cache, data_path)
    return L.run(work, launcher, cache, finish=finish)


def with_tuned_rates(profile: Profile, arch: str, scenario: str, results=None) -> Profile:
    """The profile with each approximate method at its tuned rate for (arch, scenario), if it asks for them."""
    if not profile.tuned_lr or not tunable(profile):
        return profile
    path = outcome_path(profile, arch, scenario, results)
    outcome = A.load_json(path)
    if outcome is None:
        raise FairgapError(f"profile {profile.name!r} asks for tuned learning rates (tuned_lr=True) but {path} "
                           f"does not exist; run `python -m fairgap_utils tune --profile {profile.name}` first")
    if outcome.get("grid") != list(profile.lr_grid):
        raise FairgapError(f"the learning-rate search {path} used the grid {outcome.get('grid')}, the profile now "
                           f"has {list(profile.lr_grid)}; rerun `python -m fairgap_utils tune --profile {profile.name}`")
    overrides = {m: dict(hp) for m, hp in profile.method_overrides.items()}
    for method in tunable(profile):
        entry = outcome["methods"].get(method)
        if entry is None or entry["key"] != _point_key(profile, arch, outcome["seed"], scenario, method,
                                                       _hp(profile, method, entry["lr"])):
            why = "has no rate for it" if entry is None else "was made with another configuration"
            raise FairgapError(f"the learning-rate search {path} {why} ({method}); rerun "
                               f"`python -m fairgap_utils tune --profile {profile.name}`")
        overrides[method] = {**overrides.get(method, {}), "lr": entry["lr"]}
    return profile.replace(method_overrides=overrides)


def grid_frame(profile_name: str, results=None):
    """One row per grid point of every tuning outcome of a profile: arch, scenario, method, lr, Avg. Gap, chosen."""
    import pandas as pd
    rows = []
    for path in sorted((A.results_dir(results) / profile_name / "tuning").glob("*/*.json")):
        o = A.load_json(path)
        if o is None or "methods" not in o:
            continue
        for method, entry in o["methods"].items():
            for p in entry["points"]:
                rows.append({"arch": o["arch"], "scenario": o["scenario"], "seed": o["seed"], "method": method,
                             "lr": p["lr"], "avg_gap": p["avg_gap"], **{k: p[k] for k in METRICS},
                             "chosen": p["lr"] == entry["lr"]})
    return pd.DataFrame(rows, columns=["arch", "scenario", "seed", "method", "lr", "avg_gap", *METRICS, "chosen"])


def rates_used(records, method: str, grid) -> "pd.DataFrame":
    """Per (arch, scenario): the rate behind a method's results and the rate `tune` chose."""
    import pandas as pd
    used = pd.DataFrame([{"arch": r["arch"], "scenario": r["scenario"], "lr used": r["stats"]["hyperparameters"]["lr"]}
                         for r in records if r["label"] == method], columns=["arch", "scenario", "lr used"])
    used = used.drop_duplicates().set_index(["arch", "scenario"])
    chosen = grid[(grid.method == method) & grid.chosen].set_index(["arch", "scenario"])["lr"]
    return used.join(chosen.rename("lr chosen by tune"), how="outer")


__all__ = ["tune", "tunable", "run_grid", "summarize", "choose", "with_tuned_rates", "grid_frame", "rates_used",
           "units"]
