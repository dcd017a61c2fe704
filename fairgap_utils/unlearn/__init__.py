"""The unlearning methods, one module each, and their registry.

Every method has one signature, `unlearn(model, split, hp, ctx) -> (model, logs)`, where
`model` is a private copy of the original, `split` the forget/retain data, `hp` the
method's hyperparameters (its DEFAULTS with overrides) and `ctx` a `Context`.
`run_method` wraps any of them with timing, peak memory and parameter counts.

To add a method: write `unlearn/<name>.py` with TITLE, DEFAULTS and `unlearn`, then add
one line to `METHODS` below; or, for a method defined outside the package (a notebook, your
own module), call `register_method(name, unlearn, defaults, title=...)`. The runner, the
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
                    exact: bool = False, replace: bool = False, short: str | None = None) -> Method:
    """Add an unlearning method defined outside the package to the registry; returns its entry.

    `unlearn(model, split, hp, ctx) -> (model, logs)` has the signature of every built-in
    method (see the module docstring); `defaults` holds every hyperparameter with its default
    (JSON values; a profile's `method_overrides` may change them by name); `title` is the name
    shown in tables (default: `name`), `summary` a sentence on what it does (default: the
    function's docstring), `short` its name in tables and verdicts (default: the title).
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
    try:
        code = inspect.getsource(unlearn)
    except (OSError, TypeError):
        code = getattr(getattr(unlearn, "__code__", None), "co_code", repr(unlearn))
    module = ModuleType(f"registered_method_{name}", (summary or inspect.getdoc(unlearn) or title or name).strip())
    module.TITLE, module.DEFAULTS, module.EXACT, module.unlearn = title or name, dict(defaults), bool(exact), unlearn
    module.SHORT = short or module.TITLE
    module.FINGERPRINT = hashlib.sha256(f"{code}\n{blob}".encode() if isinstance(code, str)
                                        else code + blob.encode()).hexdigest()[:12]
    METHODS[name] = Method(name, module)
    return METHODS[name]


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


__all__ = ["METHODS", "Method", "Context", "run_method", "hyperparameters", "register_method", "unregister_method"]
