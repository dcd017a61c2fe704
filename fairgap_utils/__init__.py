"""fairgap_utils: train, unlearn, attack and measure the per-layer fairness-gap of
*Fairness and Robustness in Machine Unlearning* (Tran & Woo, WWW '25).

The public API, importable from `fairgap_utils` itself and kept stable; every other
module and name is private by convention and may change:

    get_profile(name=None, **overrides)      a Profile: every knob of a run (smoke | cpu | paper)
    make_split(profile, seed, scenario)      the forget / retain / validation / test Split (uint8 NCHW)
    create_model(arch, num_classes=10)       a registered architecture, untrained, taking [0, 1] images
    original_model(profile, arch, seed)      the trained original `compute` unlearns from (checkpointed)
    batches(x, y, batch_size, shuffle=...)   (float images, labels) batches of a Split's tensors
    register_method(name, unlearn, defaults, title=None)
                                             add an unlearning method defined outside the package
    METHODS                                  the registry: name -> Method (title, defaults, summary)
    compute(profile, archs=, seeds=, scenarios=, methods=, results=)
                                             train, unlearn and measure; one result file per model
    load_records(profile, results=None)      those result files, as dicts
    measure(model, split, profile=None)      every measurement of one model as one dict: UA, RA, TA,
                                             MIA-efficacy, sigma and eps per layer, FGSM/PGD accuracy
    fairness_gap(model, x, y)                per-layer, per-class sigma and eps of ANY torch model
                                             with BatchNorm / LayerNorm / GroupNorm layers
    Profile, Split, Context, Normalized      the types these take and return
    FairgapError                             what bad input raises: one line naming the value

An unlearning method is `unlearn(model, split, hp, ctx) -> (model, logs)`: `model` is a
private copy of the original, `split` a Split, `hp` the defaults with overrides, `ctx` a
Context (original, train_config, arch, seed). Image types (uint8 0-255, or float [0, 1];
NCHW) are checked in one place, `fairgap_utils.data`, whose docstring says what is accepted.

Importing this package is cheap: each name is imported on first use, and nothing here
imports the book side (`fairgap_utils.book`: notebooks, figures, jupyter-book).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import FairgapError

_PUBLIC = {  # name -> module that defines it
    "get_profile": "config", "Profile": "config",
    "make_split": "api", "batches": "data", "Split": "data",
    "create_model": "models", "Normalized": "models",
    "register_method": "unlearn", "METHODS": "unlearn", "Context": "unlearn",
    "compute": "computing.stage", "load_records": "files",
    "measure": "api", "fairness_gap": "api", "original_model": "api",
}

__all__ = sorted([*_PUBLIC, "FairgapError"])

def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # for editors and type checkers; at run time the names load lazily
    from .api import fairness_gap, make_split, measure, original_model
    from .computing.stage import compute
    from .config import Profile, get_profile
    from .data import Split, batches
    from .files import load_records
    from .models import Normalized, create_model
    from .unlearn import METHODS, Context, register_method
