"""The names a profile or a command takes from the registries, checked where they enter.

`config` is a leaf: it checks the values a profile holds by itself. Architectures (`models.MODELS`),
unlearning methods and their hyperparameters (`unlearn.METHODS`) and KeepGap's targets are names
of registries that import torch; they are checked here, by the CLI, the public api and the planner
(`pipeline.select`), before any work. A method registered in this process (`register_method`) is
a name like any other.

Which methods a profile runs, and with what, is the methods' own declaration (each module's
PROFILES); `methods_of` and `method_overrides` read it, under what the profile itself sets.
"""
from __future__ import annotations

from .config import SCENARIOS, Profile
from .errors import check_choice
from .models import MODELS
from .unlearn import METHODS, hyperparameters
from .unlearn.keep_gap import TARGETS


def check_names(archs=(), methods=(), scenarios=()) -> None:
    """Architectures, methods and scenarios given by name (a command line, a page's parameters)."""
    for a in archs:
        check_choice("architecture", a, MODELS)
    for m in methods:
        check_choice("unlearning method", m, METHODS)
    for s in scenarios:
        check_choice("forget scenario", s, SCENARIOS)


def methods_of(p: Profile) -> tuple:
    """The methods `p` runs: its own `methods`, or (None) every registered method whose PROFILES names it, in
    registry order."""
    if p.methods is not None:
        return tuple(p.methods)
    return tuple(m for m, entry in METHODS.items() if p.name in entry.profiles)


def method_overrides(p: Profile, method: str) -> dict:
    """What `p` changes of `method`'s DEFAULTS: the method's entry for the profile (its PROFILES), then the
    profile's own `method_overrides`."""
    check_choice("unlearning method", method, METHODS)
    return {**METHODS[method].profiles.get(p.name, {}), **p.method_overrides.get(method, {})}


def method_entries(p: Profile, methods) -> dict:
    """{method: {"title", "short", "summary", "registered", "hyperparameters"}} of `methods` under `p`, "original"
    first: what the plan (results/<profile>/plan.json) tells the pages about each method (`manifest.method_facts`)."""
    return {"original": {"title": "Original", "short": "Original"}} | {
        m: {"title": METHODS[m].title, "short": METHODS[m].short, "summary": METHODS[m].summary,
            "registered": METHODS[m].registered, "hyperparameters": hyperparameters(m, method_overrides(p, m))}
        for m in methods}


def check_profile(p: Profile) -> Profile:
    """The profile's names of registered things: its architectures, methods, the hyperparameters its
    overrides and variants name, KeepGap's targets. Returns the profile; one line per mistake."""
    check_names(p.archs, methods_of(p))
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


__all__ = ["check_names", "check_profile", "methods_of", "method_overrides", "method_entries"]
