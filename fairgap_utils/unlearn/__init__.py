"""The unlearning methods, one module each, and their registry.

Every method has one signature, `unlearn(model, split, hp, ctx) -> (model, logs)`, where
`model` is a private copy of the original, `split` the forget/retain data, `hp` the
method's hyperparameters (its DEFAULTS with overrides) and `ctx` a `Context`.
`run_method` wraps any of them with timing, peak memory and parameter counts.

Everything about a method is in its module: TITLE (headings), SHORT (tables and verdicts),
DEFAULTS (its hyperparameters), PROFILES (the profiles that run it, each with what it changes of
DEFAULTS there) and `unlearn`. To add one: write `unlearn/<name>.py` with those, then add its
module to `METHODS` below; or, for a method defined outside the package (a notebook, your own
module), call `register_method(name, unlearn, defaults, title=...)`. The planner, the runner, the
notebooks, the book and the tests iterate over this registry.
"""
from __future__ import annotations

import copy
import hashlib
import inspect
import json
import re
import time
from dataclasses import dataclass
from types import ModuleType

import torch

from ..config import PROFILES
from ..errors import FairgapError, check_choice
from . import bs, cf_k, eu_k, ft, ga, keep_gap, l1_sparse, retrain, rl, salun, scrub
from .common import Context


@dataclass(frozen=True)
class Method:
    name: str
    module: ModuleType

    @property
    def title(self) -> str:
        return self.module.TITLE

    @property
    def short(self) -> str:
        """The name in tables and verdicts (`SHORT`; default: the title)."""
        return getattr(self.module, "SHORT", self.module.TITLE)

    @property
    def defaults(self) -> dict:
        return dict(self.module.DEFAULTS)

    @property
    def profiles(self) -> dict:
        """{profile name: what it changes of DEFAULTS there}: the profiles that run the method (`PROFILES`)."""
        return {name: dict(hp) for name, hp in self.module.PROFILES.items()}

    @property
    def exact(self) -> bool:
        return getattr(self.module, "EXACT", False)

    @property
    def summary(self) -> str:
        return (self.module.__doc__ or "").strip()

    @property
    def registered(self) -> bool:
        """Added with `register_method` (defined outside the package)."""
        return hasattr(self.module, "FINGERPRINT")

    @property
    def fingerprint(self) -> str | None:
        """A registered method's hash of its code and defaults (part of its results' cache key); None for a built-in."""
        return getattr(self.module, "FINGERPRINT", None)


METHODS: dict[str, Method] = {m.__name__.rsplit(".", 1)[-1]: Method(m.__name__.rsplit(".", 1)[-1], m) for m in (
    retrain, ft, cf_k, eu_k, ga, rl, salun, scrub, bs, l1_sparse, keep_gap)}


BUILT_IN = frozenset(METHODS)
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # used in file names: results/.../<name>.json, book/methods/<name>


def register_method(name: str, unlearn, defaults: dict, title: str | None = None, summary: str | None = None,
                    exact: bool = False, replace: bool = False, short: str | None = None,
                    profiles: dict | None = None) -> Method:
    """Add an unlearning method defined outside the package to the registry; returns its entry.

    `unlearn(model, split, hp, ctx) -> (model, logs)` has the signature of every built-in
    method (see the module docstring); `defaults` holds every hyperparameter with its default
    (JSON values; a profile's `method_overrides` may change them by name); `title` is the name
    shown in tables (default: `name`), `summary` a sentence on what it does (default: the
    function's docstring), `short` its name in tables and verdicts (default: the title), `profiles`
    the profiles that run it, each with what it changes of `defaults` there (default: every profile,
    at the defaults).
    Afterwards `compute`, profile validation, the book's tables and the registry-wide tests treat
    it like a built-in method.

    Its results are cached under a key that includes the source of `unlearn` and the
    defaults, so editing the function recomputes them. A name can be registered once (one
    error otherwise); `replace=True` redefines a registered (never a built-in) method.
    """
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or name == "original":
        raise FairgapError(f"method name {name!r} is not valid; use letters, digits and underscores, starting "
                           "with a letter (it names files), and not 'original'")
    if name in BUILT_IN or (name in METHODS and not replace):
        raise FairgapError(f"unlearning method {name!r} is already registered"
                           + (" (a built-in method)" if name in BUILT_IN else "; pass replace=True to redefine it")
                           + f"; registered: {', '.join(METHODS)}")
    if not callable(unlearn):
        raise FairgapError(f"unlearn for {name!r} must be a function unlearn(model, split, hp, ctx), got {unlearn!r}")
    try:
        inspect.signature(unlearn).bind(None, None, None, None)
    except TypeError:
        raise FairgapError(f"unlearn for {name!r} has the signature {inspect.signature(unlearn)}; expected "
                           "(model, split, hp, ctx) returning (model, logs)") from None
    except ValueError:  # a builtin without a signature: accept
        pass
    if not isinstance(defaults, dict) or not all(isinstance(k, str) for k in defaults):
        raise FairgapError(f"defaults for {name!r} must be a dict of hyperparameter name -> value, got {defaults!r}")
    try:
        blob = json.dumps(defaults, sort_keys=True)
    except TypeError as e:
        raise FairgapError(f"defaults for {name!r} must hold JSON values (numbers, strings, lists): {e}") from None
    for what, value in (("title", title), ("short", short)):
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise FairgapError(f"{what} for {name!r} must be a non-empty string, got {value!r}")
    profiles = {name: {} for name in PROFILES} if profiles is None else profiles
    check_profiles(name, profiles, defaults)
    try:
        code = inspect.getsource(unlearn)
    except (OSError, TypeError):
        code = getattr(getattr(unlearn, "__code__", None), "co_code", repr(unlearn))
    module = ModuleType(f"registered_method_{name}", (summary or inspect.getdoc(unlearn) or title or name).strip())
    module.TITLE, module.DEFAULTS, module.EXACT, module.unlearn = title or name, dict(defaults), bool(exact), unlearn
    module.SHORT, module.PROFILES = short or module.TITLE, {p: dict(hp) for p, hp in profiles.items()}
    module.FINGERPRINT = hashlib.sha256(f"{code}\n{blob}".encode() if isinstance(code, str)
                                        else code + blob.encode()).hexdigest()[:12]
    METHODS[name] = Method(name, module)
    return METHODS[name]


def check_profiles(name: str, profiles, defaults: dict) -> None:
    """A method's PROFILES: a dict {profile name: {hyperparameter: value}} of known profiles and hyperparameters."""
    if not isinstance(profiles, dict) or not all(isinstance(hp, dict) for hp in profiles.values()):
        raise FairgapError(f"profiles for {name!r} must be a dict of profile name -> {{hyperparameter: value}}, "
                           f"got {profiles!r}")
    for profile, hp in profiles.items():
        check_choice(f"profile that runs {name}", profile, PROFILES)
        for key in hp:
            check_choice(f"hyperparameter of {name} (profile {profile})", key, defaults)


def unregister_method(name: str) -> None:
    """Remove a method added with `register_method` (tests use it to clean up)."""
    check_choice("registered (not built-in) method", name, [m for m in METHODS if m not in BUILT_IN])
    del METHODS[name]


def hyperparameters(name: str, overrides: dict | None = None) -> dict:
    """The method's DEFAULTS with `overrides` applied; unknown keys are an error."""
    check_choice("unlearning method", name, METHODS)
    hp = METHODS[name].defaults
    for key, value in (overrides or {}).items():
        check_choice(f"hyperparameter of {name}", key, hp)
        hp[key] = value
    return hp


def run_method(name: str, original: torch.nn.Module, split, ctx: Context, overrides: dict | None = None):
    """Unlearn with method `name` from a copy of `original`; returns (model, stats)."""
    hp = hyperparameters(name, overrides)
    model = copy.deepcopy(original)
    device = next(original.parameters()).device
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        result = METHODS[name].module.unlearn(model, split, hp, ctx)
    except ValueError as e:
        raise FairgapError(f"{name}: {e}") from None
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[0], torch.nn.Module)
            and isinstance(result[1], dict)):
        raise FairgapError(f"{name}: unlearn returned {type(result).__name__}; expected a pair (model, logs dict)")
    model, logs = result
    logs = dict(logs)
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    trainable = logs.pop("trainable_params", None)
    if trainable is None:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    stats = {"method": name, "hyperparameters": hp, "time_s": elapsed, "trainable_params": int(trainable),
             "total_params": sum(p.numel() for p in model.parameters()),
             "peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None,
             "logs": logs}
    return model, stats


__all__ = ["METHODS", "Method", "Context", "run_method", "hyperparameters", "register_method", "unregister_method",
           "check_profiles"]
