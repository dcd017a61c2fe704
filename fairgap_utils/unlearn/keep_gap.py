"""KeepGap (beyond the paper): random labels (RL) plus a penalty that keeps the fairness-gap.

The paper's open problem is an unlearning method that keeps the fairness-gap
eps^l = max_c sigma_c^l - min_c sigma_c^l small. KeepGap adds to RL's loss on every retain
batch a differentiable penalty on the per-class statistics of the normalization layers.

Base: RL. RL, SalUn and SCRUB are the methods the paper finds raise the gap; SalUn is RL
restricted to a weight mask and SCRUB a different loss altogether, so RL is the simplest of
them, and with `weight` 0 KeepGap is RL bit for bit (same seeds, same batches): any
difference between the two is the penalty's.

The penalty, on each retain batch (RL's forget batches with random labels are untouched):
forward hooks on the chosen normalization layers compute, inside the autograd graph,
sigma_c^l of every retained class c with at least two images in the batch: the `channel`
definition of fairness.py (per channel, the variance over the class's images and
positions; the mean over channels). Both targets are relative, so that every layer weighs
alike whatever the size of its features:
- target "spread": a smooth eps^l of v_c = sigma_c^l / mean_c sigma_c^l (the batch's mean
  over the classes, in the graph): smax_c v_c - smin_c v_c with
  smax(v) = T log mean_c exp(v_c / T) and smin(v) = -T log mean_c exp(-v_c / T), 0 when the
  classes agree, max - min as the temperature T -> 0. Dividing by the current mean means
  the penalty cannot be met by shrinking a layer's features as a whole;
- target "deviation": mean_c ((sigma_c^l - sigma_c^orig) / s^l)^2, the deviation of each
  class's sigma from the original model's, relative to s^l, the original's mean sigma over
  the retained classes.
The loss is CE + weight * (the mean of the layer penalties).

The reference (sigma_c^orig and s^l) is measured once, before unlearning, on
D_r, as the penalty will see it: the original in train mode (BatchNorm normalizes with the
batch's own statistics during training), on batches of the training size with the same
augmentation, the mean of the per-batch sigmas weighted by the class's images; so the
penalty's "deviation" is 0 as long as unlearning leaves the layers unchanged. Retrain is
never used. The hooks cost one more pass over each normalization output per retain batch;
`benchmarks/keep_gap_time.py` measures the time against RL's.
"""
from __future__ import annotations

import contextlib
import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

from .. import data as D
from ..hooks import capture, norm_layers
from ..train import autocast, device_of, epochs_steps, generator_for
from . import rl
from .common import sgd_finetune

TITLE = "KeepGap: random labels with a fairness-gap penalty"
DEFAULTS = dict(rl.DEFAULTS,
                weight=1.0,          # penalty weight; 0 is RL exactly
                target="deviation",  # deviation: each sigma_c^l's distance to the original's | spread: a smooth eps^l
                layers="all",        # normalization layers penalized: all | first_half | last_half (forward order)
                temperature=0.1)     # of the smooth max / min ("spread"), in units of the classes' mean sigma
TARGETS = ("spread", "deviation")
LAYER_SETS = ("all", "first_half", "last_half")
MIN_IMAGES = 2                       # a class enters a batch's penalty with at least this many images


def penalized_layers(model: nn.Module, which: str) -> list[str]:
    """Names (as in hooks.norm_layers) of the normalization layers the penalty covers."""
    if which not in LAYER_SETS:
        raise ValueError(f"unknown layers {which!r}; valid choices: {', '.join(LAYER_SETS)}")
    names = [n for n, _ in norm_layers(model)]
    if not names:
        raise ValueError("the model has no normalization layer to penalize")
    half = len(names) // 2
    return {"all": names, "first_half": names[:len(names) - half], "last_half": names[half:]}[which]


def channels(out: torch.Tensor, module: nn.Module) -> torch.Tensor:
    """A normalization output as (batch, channels, positions); float64 stays float64 (for tests)."""
    if out.dtype in (torch.float16, torch.bfloat16):
        out = out.float()
    if isinstance(module, nn.LayerNorm) and out.dim() > 2:   # (B, tokens, D): channels are the last dim
        out = out.transpose(1, -1)
    return out.reshape(out.shape[0], out.shape[1], -1)


def batch_class_sigma(feats: torch.Tensor, y: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """sigma_c (the `channel` definition) of each class in `classes` on one batch, differentiable.

    feats: (B, C, P). Two passes (class means, then squared deviations), which never keep a
    reference to `feats` for the backward pass: a ReLU applied in place to a BatchNorm's
    output after the hook has run cannot invalidate the graph.
    """
    onehot = (y[:, None] == classes[None, :]).to(feats.dtype)          # (B, K)
    n = onehot.sum(0) * feats.shape[2]                                   # elements per channel
    mean = (onehot.T @ feats.sum(2)) / n[:, None]                        # (K, C)
    centred = feats - (onehot @ mean)[:, :, None]                        # images of other classes: unused
    var = (onehot.T @ centred.pow(2).sum(2)) / n[:, None]                # (K, C)
    return var.mean(1)


def smooth_spread(v: torch.Tensor, temperature: float) -> torch.Tensor:
    """smax(v) - smin(v) with log-mean-exp at `temperature`: 0 for equal values, -> max - min as T -> 0."""
    log_n = math.log(v.numel())
    smax = temperature * (torch.logsumexp(v / temperature, 0) - log_n)
    smin = -temperature * (torch.logsumexp(-v / temperature, 0) - log_n)
    return smax - smin


@contextlib.contextmanager
def class_sigma_hooks(model: nn.Module, layers: list[str]):
    """Forward hooks on `layers`: while `batch["y"]` and `batch["classes"]` are set, every
    forward stores `sigmas[layer]` = batch_class_sigma of that layer's output."""
    modules = dict(norm_layers(model))
    sigmas: dict[str, torch.Tensor] = {}
    batch = {"y": None, "classes": None}

    def on_output(name, out):
        if batch["y"] is not None:
            sigmas[name] = batch_class_sigma(channels(out, modules[name]), batch["y"], batch["classes"])

    with capture(model, on_output, layers):
        yield sigmas, batch


def penalized_classes(y: torch.Tensor, retained: list[int]) -> list[int]:
    """The retained classes with at least MIN_IMAGES images in the batch (one device sync); none when
    no class reached MIN_IMAGES in any batch of the reference (tiny data): the penalty is then off."""
    if not retained:
        return []
    counts = torch.bincount(y, minlength=max(retained) + 1).tolist()
    return [c for c in retained if counts[c] >= MIN_IMAGES]


def gap_penalty(sigmas: dict, classes: list[int], reference: dict, target: str, temperature: float) -> torch.Tensor:
    """The mean over layers of each layer's penalty (module docstring) on one batch.

    sigmas[layer]: sigma_c of `classes` on the batch; reference[layer] = (the original's
    sigma per class, indexed by class, and the layer's scale s^l).
    """
    terms = []
    for name, sigma in sigmas.items():
        if target == "spread":
            terms.append(smooth_spread(sigma / sigma.mean(), temperature))
        else:
            ref, scale = reference[name]
            terms.append(((sigma - ref[classes].to(sigma)) / scale).pow(2).mean())
    return torch.stack(terms).mean()


@torch.no_grad()
def reference_sigmas(model: nn.Module, split, layers: list[str], retained: list[int], batch_size: int,
                     seed: int) -> dict:
    """{layer: (the original's sigma_c per class, scale s^l)}, measured as the penalty sees it.

    A copy of `model` in train mode, on D_r in batches of `batch_size` with augmentation
    (its own generator: the training batches are not disturbed); per class, the mean of the
    per-batch sigmas weighted by the class's images in the batch (classes with at least
    MIN_IMAGES images). Scale: the mean over the retained classes with a sigma.
    """
    ref = copy.deepcopy(model).train()
    device = device_of(ref)
    num_classes = max(retained) + 1
    sums = {n: torch.zeros(num_classes, dtype=torch.float64, device=device) for n in layers}
    weights = torch.zeros(num_classes, dtype=torch.float64, device=device)
    gen = generator_for(split.x_retain, seed)
    with class_sigma_hooks(ref, layers) as (sigmas, batch):
        for x, y in D.batches(split.x_retain, split.y_retain, batch_size, shuffle=True, augment_images=True,
                              generator=gen):
            classes = penalized_classes(y, retained)
            if not classes:
                continue
            idx = torch.tensor(classes, device=y.device)
            images = (y[:, None] == idx[None, :]).sum(0).double()
            batch.update(y=y, classes=idx)
            sigmas.clear()
            with autocast(device):
                ref(x)
            for name, sigma in sigmas.items():
                sums[name].index_add_(0, idx, sigma.double() * images)
            weights.index_add_(0, idx, images)
    seen = weights > 0
    out = {}
    for name in layers:
        sigma = torch.where(seen, sums[name] / weights.clamp_min(1), torch.nan)
        scale = sigma[seen].mean().clamp_min(1e-12)
        out[name] = (sigma.float(), float(scale))
    del ref
    return out


def check(hp: dict) -> None:
    if hp["target"] not in TARGETS:
        raise ValueError(f"unknown target {hp['target']!r}; valid choices: {', '.join(TARGETS)}")
    if not hp["weight"] >= 0:
        raise ValueError(f"weight {hp['weight']!r} must be >= 0")
    if not hp["temperature"] > 0:
        raise ValueError(f"temperature {hp['temperature']!r} must be > 0")


def unlearn(model, split, hp, ctx):
    check(hp)
    layers = penalized_layers(model, hp["layers"])
    retained = [c for c in range(split.num_classes) if c != split.forget_class]
    reference = reference_sigmas(model, split, layers, retained, hp["batch_size"], ctx.seed + 3)
    first = reference[layers[0]][0]
    retained = [c for c in retained if not torch.isnan(first[c])]   # classes the reference has seen
    batches, steps = rl.random_label_batches(split, hp, ctx.seed)
    forget_steps = epochs_steps(len(split.x_forget), hp["batch_size"])
    phase = {"retain": False}
    penalties: dict[int, list] = {}

    def tagged(epoch):
        """RL's batches, unchanged; the first forget_steps of each epoch are D_f's."""
        for i, (x, y) in enumerate(batches(epoch)):
            phase["retain"] = i >= forget_steps
            yield x, y

    with class_sigma_hooks(model, layers) as (sigmas, batch):
        def loss_fn(m, x, y, epoch):
            sigmas.clear()
            classes = penalized_classes(y, retained) if phase["retain"] else []
            on = len(classes) >= 2
            batch.update(y=y if on else None, classes=torch.tensor(classes, device=y.device) if on else None)
            loss = F.cross_entropy(m(x), y)
            if on:
                penalty = gap_penalty(sigmas, classes, reference, hp["target"], hp["temperature"])
                penalties.setdefault(epoch, []).append(penalty.detach())
                loss = loss + hp["weight"] * penalty
            return loss

        loss = sgd_finetune(model, hp, hp["epochs"], tagged, steps, loss_fn, desc="KeepGap")
    return model, {"loss_per_epoch": loss,
                   "penalty_per_epoch": [float(torch.stack(penalties[e]).mean()) if e in penalties else float("nan")
                                         for e in range(hp["epochs"])],
                   "penalized_layers": layers,
                   "reference_scale": {n: reference[n][1] for n in layers}}
