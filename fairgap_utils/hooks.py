"""Forward hooks on every normalization layer (BatchNorm, LayerNorm), in model order."""
from __future__ import annotations

import contextlib
from typing import Callable

from torch import nn

from .errors import check_choice

NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)


def norm_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every normalization layer in registration (= forward) order.

    Names drop the `net.` prefix of the input-normalization wrapper, so they read like
    torchvision's: `bn1`, `layer3.1.bn2`, `encoder.layers.encoder_layer_0.ln_1`.
    """
    return [(name.removeprefix("net."), m) for name, m in model.named_modules() if isinstance(m, NORM_TYPES)]


def layer_kind(module: nn.Module) -> str:
    return type(module).__name__


@contextlib.contextmanager
def capture(model: nn.Module, callback: Callable[[str, object], None], layers: list[str] | None = None):
    """Call `callback(name, output)` for each normalization layer's output during forwards."""
    available = norm_layers(model)
    names = [n for n, _ in available]
    for name in layers or []:
        check_choice("normalization layer", name, names)
    handles = []
    for name, module in available:
        if layers is None or name in layers:
            handles.append(module.register_forward_hook(lambda m, i, out, name=name: callback(name, out)))
    try:
        yield names if layers is None else list(layers)
    finally:
        for h in handles:
            h.remove()
