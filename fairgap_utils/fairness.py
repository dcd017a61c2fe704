"""The fairness-gap: per-class variance of normalization-layer features, and its spread.

For a layer l and a class c, sigma_c^l is a variance of the layer's outputs over the
images of class c; the fairness-gap is eps^l = max_c sigma_c^l - min_c sigma_c^l.
The paper does not say which variance, so three definitions are measured at once:

- `channel` (default): per channel, the variance over the class's images and all
  spatial positions (tokens for a ViT), then the mean over channels.
- `pooled`: the variance of every element of the class's outputs, pooled.
- `sample`: per image, the variance across all its features; the mean over images.

Statistics stream batch by batch in float64 sums, so no set of features is ever held
in memory; the result is per layer and per class, and `epsilon` turns it into the gap
over all classes or over the retained ones only.
"""
from __future__ import annotations

import torch

from . import data as D
from .definitions import CLASS_SETS, SIGMA_DEFINITIONS, epsilon  # noqa: F401  (fairness.epsilon, ...)
from .errors import check_choice
from .hooks import capture, layer_kind, norm_layers
from .train import autocast, device_of


def channels_first(out: torch.Tensor, module) -> torch.Tensor:
    """A normalization output as (batch, channels, positions) in float32."""
    out = out.float()
    if isinstance(module, torch.nn.LayerNorm):   # (B, tokens, D): channels are the last dim
        out = out.transpose(1, -1) if out.dim() > 2 else out
    return out.reshape(out.shape[0], out.shape[1], -1)


class _LayerStats:
    def __init__(self, num_classes: int, channels: int, device):
        f64 = dict(dtype=torch.float64, device=device)
        self.sum = torch.zeros(num_classes, channels, **f64)      # per class, per channel
        self.sumsq = torch.zeros(num_classes, channels, **f64)
        self.count = torch.zeros(num_classes, **f64)               # elements per channel
        self.sample_var = torch.zeros(num_classes, **f64)          # sum of per-image variances
        self.images = torch.zeros(num_classes, **f64)

    def add(self, feats: torch.Tensor, y: torch.Tensor):
        positions = feats.shape[2]
        self.sum.index_add_(0, y, feats.sum(2).double())
        self.sumsq.index_add_(0, y, feats.pow(2).sum(2).double())
        self.count.index_add_(0, y, torch.full_like(y, positions, dtype=torch.float64))
        self.sample_var.index_add_(0, y, feats.flatten(1).double().var(1, unbiased=False))
        self.images.index_add_(0, y, torch.ones_like(y, dtype=torch.float64))

    def sigma(self) -> dict[str, list[float]]:
        n = self.count[:, None]
        mean, meansq = self.sum / n, self.sumsq / n
        channel = (meansq - mean ** 2).clamp_min(0).mean(1)
        channels = self.sum.shape[1]
        total = self.count * channels
        pooled = (self.sumsq.sum(1) / total - (self.sum.sum(1) / total) ** 2).clamp_min(0)
        sample = self.sample_var / self.images
        return {"channel": channel.tolist(), "pooled": pooled.tolist(), "sample": sample.tolist()}


@torch.no_grad()
def class_sigmas(model, x: torch.Tensor, y: torch.Tensor, num_classes: int, batch_size: int = 500,
                 float_range: tuple | None = D.UNIT) -> list[dict]:
    """Per-layer, per-class sigma under all three definitions, streamed over (x, y).

    Images as `data.batches` takes them (uint8 scaled to [0, 1]; floats in `float_range`,
    unchecked if None, passed unchanged). Returns a list in model order:
    {layer, depth, kind, sigma: {definition: [sigma_c, ...]}}.
    """
    model.eval()
    device = device_of(model)
    modules = dict(norm_layers(model))
    stats: dict[str, _LayerStats] = {}
    labels = {}

    def on_output(name, out):
        feats = channels_first(out, modules[name])
        if name not in stats:
            stats[name] = _LayerStats(num_classes, feats.shape[1], feats.device)
        stats[name].add(feats, labels["y"])

    with capture(model, on_output) as names:
        for xb, yb in D.batches(x, y, batch_size, float_range=float_range):
            labels["y"] = yb.to(device)
            with autocast(device):
                model(xb.to(device))
    return [{"layer": n, "depth": i, "kind": layer_kind(modules[n]), "sigma": stats[n].sigma()}
            for i, n in enumerate(names)]


def fairness_gap(layers: list[dict], definition: str = "channel", class_set: str = "all",
                 forget_class: int | None = None) -> list[dict]:
    """The tidy per-layer table: layer, depth, kind, per-class sigma and epsilon."""
    check_choice("sigma definition", definition, SIGMA_DEFINITIONS)
    return [{"layer": L["layer"], "depth": L["depth"], "kind": L["kind"],
             "sigma": L["sigma"][definition],
             "epsilon": epsilon(L["sigma"][definition], class_set, forget_class)} for L in layers]
