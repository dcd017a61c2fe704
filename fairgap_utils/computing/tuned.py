"""What the searches of `tune` chose, as the planner reads it: each method's learning rate and KeepGap's weight.

`pipeline.plan` applies them through `with_tuned_rates` (a profile with `tuned_lr=True` or
`keep_gap_calibrated=True`), so the chosen values enter the hyperparameters and the result keys;
`tune` writes the files read here (its docstring says which and how the values are chosen).
Reading them needs no model: this module imports no training code.
"""
from __future__ import annotations

from pathlib import Path

from ..config import Profile
from ..errors import FairgapError
from ..registries import method_overrides, methods_of
from ..unlearn import METHODS, hyperparameters, rl
from ..unlearn.keep_gap import TARGETS
from . import artifacts as A
from .keys import point_key, variant_label


def tunable(profile: Profile, methods=None) -> list[str]:
    """The approximate methods of the profile whose learning rate is searched (KeepGap's is not when its
    weight is calibrated instead)."""
    names = methods_of(profile) if methods is None else methods
    return [m for m in names if not METHODS[m].exact and "lr" in METHODS[m].defaults
            and not (m == KEEP_GAP and profile.keep_gap_calibrated)]

KEEP_GAP = "keep_gap"

def calibrates_keep_gap(profile: Profile, methods=None) -> bool:
    """The profile calibrates KeepGap's weight, and KeepGap is among `methods` (None: the profile's)."""
    return profile.keep_gap_calibrated and KEEP_GAP in (methods_of(profile) if methods is None else methods)

def folder(profile: Profile, results=None) -> Path:
    return A.results_dir(results) / profile.name / "tuning"

def point_path(profile: Profile, arch: str, scenario: str, method: str, lr: float, results=None) -> Path:
    return folder(profile, results) / arch / scenario / f"{method}-lr{lr:g}.json"

def outcome_path(profile: Profile, arch: str, scenario: str, results=None) -> Path:
    return folder(profile, results) / arch / f"{scenario}.json"

def rate_hyperparameters(profile: Profile, method: str, lr: float) -> dict:
    return hyperparameters(method, {**method_overrides(profile, method), "lr": lr})

def with_tuned_rates(profile: Profile, arch: str, scenario: str, results=None) -> Profile:
    """The profile with each approximate method at its tuned rate for (arch, scenario), if it asks for them,
    and with KeepGap's calibrated weights for `arch` (`keep_gap_weight`), if it calibrates them."""
    if calibrates_keep_gap(profile):
        profile = profile.replace(keep_gap_weight=keep_gap_weights(profile, arch, results))
    if not profile.tuned_lr or not tunable(profile):
        return profile
    path = outcome_path(profile, arch, scenario, results)
    outcome = A.load_json(path)
    if outcome is None:
        raise FairgapError(f"profile {profile.name!r} asks for tuned learning rates (tuned_lr=True) but {path} "
                           f"does not exist; run `python -m fairgap_utils tune --profile {profile.name}` first")
    if outcome.get("grid") != list(profile.lr_grid):
        raise FairgapError(f"the learning-rate search {path} used the grid {outcome.get('grid')}, the profile now "
                           f"has {list(profile.lr_grid)}; rerun "
                           f"`python -m fairgap_utils tune --profile {profile.name}`")
    overrides = {m: dict(hp) for m, hp in profile.method_overrides.items()}
    for method in tunable(profile):
        entry = outcome["methods"].get(method)
        if entry is None or entry["key"] != point_key(profile, arch, outcome["seed"], scenario, method,
                                                       rate_hyperparameters(profile, method, entry["lr"])):
            why = "has no rate for it" if entry is None else "was made with another configuration"
            raise FairgapError(f"the learning-rate search {path} {why} ({method}); rerun "
                               f"`python -m fairgap_utils tune --profile {profile.name}`")
        overrides[method] = {**overrides.get(method, {}), "lr": entry["lr"]}
    return profile.replace(method_overrides=overrides)

KEEP_GAP_OUTCOME = "keep_gap.json"

KEEP_GAP_SCENARIO = "class"       # the plan: the weight is calibrated class-wise

def keep_gap_targets() -> tuple:
    return tuple(sorted(TARGETS, key=lambda t: t != "deviation"))    # the default target first

def keep_gap_point_path(profile: Profile, arch: str, target: str | None, weight: float | None,
                        results=None) -> Path:
    """A calibration point's file; target None: the RL reference."""
    name = "keep_gap-rl" if target is None else f"keep_gap-{target}-w{weight:g}"
    return folder(profile, results) / arch / KEEP_GAP_SCENARIO / f"{name}.json"

def keep_gap_outcome_path(profile: Profile, arch: str, results=None) -> Path:
    return folder(profile, results) / arch / KEEP_GAP_OUTCOME

def keep_gap_hyperparameters(profile: Profile, target: str | None, weight: float | None) -> tuple[str, dict]:
    """(method, hyperparameters) of a calibration point: KeepGap at (target, weight) with the profile's other
    hyperparameters, or (target None) RL with KeepGap's own RL hyperparameters: KeepGap at weight 0."""
    base = method_overrides(profile, KEEP_GAP)
    if target is None:
        hp = hyperparameters(KEEP_GAP, base)
        return "rl", hyperparameters("rl", {k: hp[k] for k in rl.DEFAULTS})
    return KEEP_GAP, hyperparameters(KEEP_GAP, {**base, "target": target, "weight": float(weight)})

def keep_gap_runs(profile: Profile, scenario: str, seed: int | None, base: dict, extra: list) -> tuple[dict, list]:
    """KeepGap's overrides and its extra runs [(label, variant)] for `pipeline.runs_for`.

    Each run takes the weight `profile.keep_gap_weight` gives its target (the calibration's, set by
    `with_tuned_rates`), keeping its label: `keep_gap`, `keep_gap-spread`. With `profile.keep_gap_dose`, in
    the class-wise scenario and for a seed of `analysis.dose_seeds`, the dose-response grid follows: per
    target (deviation, spread), its weight w* times each multiplier of `analysis.dose_multipliers`, labelled
    `keep_gap-<target>-x<multiplier>`. Multiplier 0 is RL bit for bit, so RL's own result file is the grid's
    0 and no run repeats it; multiplier 1 repeats the target's run above (the same hyperparameters), which
    `runs_for` does not run twice.
    """
    weights = profile.keep_gap_weight
    default_target = hyperparameters(KEEP_GAP, base)["target"]

    def weighted(overrides: dict, target: str) -> dict:
        return {**overrides, "weight": float(weights[target])} if target in weights else overrides
    runs = [(label or variant_label(KEEP_GAP, v), weighted(v, v.get("target", default_target))) for label, v in extra]
    base = weighted(base, default_target)
    a = profile.analysis
    if profile.keep_gap_dose and scenario == "class" and seed is not None and seed in a.dose_seeds:
        for target in keep_gap_targets():
            w = float(hyperparameters(KEEP_GAP, weighted({**base, "target": target}, target))["weight"])
            runs += [(f"{KEEP_GAP}-{target}-x{x:g}", {"target": target, "weight": w * x})
                     for x in a.dose_multipliers if x != 0]
    return base, runs

def keep_gap_weights(profile: Profile, arch: str, results=None) -> dict:
    """{target: weight} the calibration chose for `arch`, checked against the profile's configuration.

    Read from `results` (default: $FAIRGAP_RESULTS or the repository's results folder); a results folder
    without the calibration (a reader's recomputed slice, another folder) falls back to the one committed
    in the repository: the calibration belongs to the profile.
    """
    path = keep_gap_outcome_path(profile, arch, results)
    committed = keep_gap_outcome_path(profile, arch, A.REPO_ROOT / "results")
    if not path.is_file() and committed.is_file():
        path = committed
    rerun = f"rerun `python -m fairgap_utils tune --profile {profile.name} --methods keep_gap`"
    outcome = A.load_json(path)
    if outcome is None or "targets" not in outcome:
        raise FairgapError(f"profile {profile.name!r} calibrates KeepGap's weight (keep_gap_calibrated=True) but "
                           f"{path} does not exist; run `python -m fairgap_utils tune --profile {profile.name} "
                           "--methods keep_gap` first")
    a = profile.analysis
    if outcome.get("grid") != [float(w) for w in a.keep_gap_weights] or outcome.get("margin") != a.keep_gap_val_margin:
        raise FairgapError(f"KeepGap's calibration {path} used the grid {outcome.get('grid')} and margin "
                           f"{outcome.get('margin')}, the profile now has {list(a.keep_gap_weights)} and "
                           f"{a.keep_gap_val_margin}; {rerun}")
    weights = {}
    for target in keep_gap_targets():
        entry = outcome["targets"].get(target)
        if entry is None or entry["weight"] is None:
            why = "has no entry" if entry is None else "found no weight within the margin"
            raise FairgapError(f"KeepGap's calibration {path} {why} for the target {target!r}; {rerun}")
        method, hp = keep_gap_hyperparameters(profile, target, entry["weight"])
        rl_method, rl_hp = keep_gap_hyperparameters(profile, None, None)
        if (entry["key"] != point_key(profile, arch, outcome["seed"], KEEP_GAP_SCENARIO, method, hp)
                or outcome["rl"]["key"] != point_key(profile, arch, outcome["seed"], KEEP_GAP_SCENARIO, rl_method,
                                                      rl_hp)):
            raise FairgapError(f"KeepGap's calibration {path} was made with another configuration ({target}); {rerun}")
        weights[target] = float(entry["weight"])
    return weights


__all__ = ["KEEP_GAP", "KEEP_GAP_OUTCOME", "KEEP_GAP_SCENARIO", "tunable", "calibrates_keep_gap", "folder",
           "point_path", "outcome_path", "rate_hyperparameters", "with_tuned_rates", "keep_gap_targets",
           "keep_gap_point_path", "keep_gap_outcome_path", "keep_gap_hyperparameters", "keep_gap_runs",
           "keep_gap_weights"]
