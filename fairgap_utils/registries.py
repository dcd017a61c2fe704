"""The names a profile or a command takes from the registries, checked where they enter.

`config` is a leaf: it checks the values a profile holds by itself. Architectures (`models.MODELS`),
unlearning methods and their hyperparameters (`unlearn.METHODS`) and KeepGap's targets are names
of registries that import torch; they are checked here, by the CLI, the public api and the planner
(`pipeline.select`), before any work. A method registered in this process (`register_method`) is
a name like any other.
"""
from __future__ import annotations

from .config import SCENARIOS, Profile
from .errors import check_choice
from .models import MODELS
from .unlearn import METHODS
from .unlearn.keep_gap import TARGETS


def check_names(archs=(), methods=(), scenarios=()) -> None:
    """Architectures, methods and scenarios given by name (a command line, a page's parameters)."""
    for a in archs:
        check_choice("architecture", a, MODELS)
    for m in methods:
        check_choice("unlearning method", m, METHODS)
    for s in scenarios:
        check_choice("forget scenario", s, SCENARIOS)


def check_profile(p: Profile) -> Profile:
    """The profile's names of registered things: its architectures, methods, the hyperparameters its
    overrides and variants name, KeepGap's targets. Returns the profile; one line per mistake."""
    check_names(p.archs, p.methods)
    for m, hp in p.method_overrides.items():
        check_choice("unlearning method", m, METHODS)
        for key in hp:
            check_choice(f"hyperparameter of {m}", key, METHODS[m].defaults)
    for m, variants in p.variants.items():
        check_choice("unlearning method", m, METHODS)
        for hp in variants:
            for key in hp:
                check_choice(f"hyperparameter of {m}", key, METHODS[m].defaults)
    for target in p.keep_gap_weight:
        check_choice("KeepGap target", target, TARGETS)
    return p


__all__ = ["check_names", "check_profile"]
