"""The unlearning methods, one module each, and their registry.

Every method has one signature, `unlearn(model, split, hp, ctx) -> (model, logs)`, where
`model` is a private copy of the original, `split` the forget/retain data, `hp` the
method's hyperparameters (its DEFAULTS with overrides) and `ctx` a `Context`.
`run_method` wraps any of them with timing, peak memory and parameter counts.

To add a method: write `unlearn/<name>.py` with TITLE, DEFAULTS and `unlearn`, then add
one line to `METHODS` below. The runner, the notebooks, the book and the tests iterate
over this registry.
"""
from __future__ import annotations

import copy
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
    def defaults(self) -> dict:
        return dict(self.module.DEFAULTS)

    @property
    def exact(self) -> bool:
        return getattr(self.module, "EXACT", False)

    @property
    def summary(self) -> str:
        return (self.module.__doc__ or "").strip()


METHODS: dict[str, Method] = {m.__name__.rsplit(".", 1)[-1]: Method(m.__name__.rsplit(".", 1)[-1], m) for m in (
    retrain, ft, cf_k, eu_k, ga, rl, salun, scrub, bs, l1_sparse, keep_gap)}


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
        model, logs = METHODS[name].module.unlearn(model, split, hp, ctx)
    except ValueError as e:
        raise FairgapError(f"{name}: {e}") from None
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


__all__ = ["METHODS", "Method", "Context", "run_method", "hyperparameters"]
