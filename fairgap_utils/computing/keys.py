"""The configuration hashes that key result files, checkpoints and search points, and the labels of runs.

A result file is current when the key stored in it equals the key its unit gets here; a change of
anything hashed below makes every committed result stale (tests/test_result_keys.py guards that).

    original_key(profile, arch, seed)          the trained original model (checkpoint)
    scenario_config(profile, scenario)         what tells two scenarios apart (forget class or fraction)
    point_key(profile, arch, seed, scenario, method, hp)   a point of a search (`tune`)
    variant_label(method, variant)             `cf_k-k3`, `keep_gap-spread`: the file name of an extra run
"""
from __future__ import annotations

from ..config import CLASS_NAMES, Profile, config_hash, resolve_class
from ..errors import FairgapError

RESULTS_VERSION = 2  # bump when the meaning of a stored number changes


def data_config(profile: Profile) -> dict:
    """The parts of the profile that choose the images (hashed into every model's key)."""
    return dict(dataset=profile.dataset, n_train=profile.n_train_per_class, n_test=profile.n_test_per_class,
                val_fraction=profile.val_fraction)


def original_key(profile: Profile, arch: str, seed: int) -> str:
    """The checkpoint key of the original model of (arch, seed): its data, architecture, training and seed."""
    return config_hash("original", RESULTS_VERSION, data_config(profile), arch, profile.train_config(arch), seed)


def scenario_config(profile: Profile, scenario: str) -> dict:
    """The scenario as it enters a key: the forgotten class (class-wise) or the forgotten share (random)."""
    forget_class = resolve_class(profile.forget_class, CLASS_NAMES[profile.dataset]) if scenario == "class" else None
    return dict(scenario=scenario, forget_class=forget_class,
                forget_fraction=profile.forget_fraction if scenario == "random" else None)


def point_key(profile: Profile, arch: str, seed: int, scenario: str, method: str, hp: dict) -> str:
    """The key of one point of a search: the same parts as a model's key (original, scenario, method,
    hyperparameters, seed), marked as a search point."""
    return config_hash("tune", original_key(profile, arch, seed), scenario_config(profile, scenario), method, hp,
                       seed, RESULTS_VERSION)


def variant_label(method: str, variant: dict) -> str:
    """The label of an extra run of `method`: `cf_k-k3`, `keep_gap-spread`, `ft-lr0.05`, `bs-no_augment`.

    One part per hyperparameter in the variant's order: a string value stands for itself,
    a number is written after its name, a bool is the name (True) or `no_` + name (False).
    """
    def part(key, value):
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return key if value else f"no_{key}"
        return f"{key}{value:g}" if isinstance(value, float) else f"{key}{value}"
    label = "-".join([method] + [part(k, v) for k, v in variant.items()])
    if not label.replace("-", "").replace("_", "").replace(".", "").replace("+", "").isalnum():
        raise FairgapError(f"variant {variant!r} of {method} gives the label {label!r}, which is not a safe "
                           "file name; use letters, digits, '.', '_', '+' and '-' in string values")
    return label


__all__ = ["RESULTS_VERSION", "data_config", "original_key", "scenario_config", "point_key", "variant_label"]
