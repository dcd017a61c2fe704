"""KeepGap (beyond the paper): random labels (RL) plus a penalty that keeps the fairness-gap.

The paper's open problem is an unlearning method that keeps the fairness-gap
eps^l = max_c sigma_c^l - min_c sigma_c^l small. KeepGap adds to RL's loss on every retain
batch a differentiable penalty on the per-class statistics of the normalization layers.

Base: RL. RL, SalUn and SCRUB are the methods the paper finds raise the gap; SalUn is RL
restricted to a weight mask and SCRUB a different loss altogether, so RL is the simplest of
them, and with `weight` 0 KeepGap is RL bit for bit (same seeds, same batches, the penalty
left out of the loss): any difference between the two is the penalty's.

The penalty, on each retain batch (RL's forget batches with random labels are untouched):
forward hooks on the chosen normalization layers (`layers`; default all of them, as the
verdicts average eps over all layers) compute, inside the autograd graph, sigma_c^l of every
retained class c with at least two images in the batch: the `channel` definition of
fairness.py (per channel, the variance over the class's images and positions; the mean over
channels). Both targets are relative, so that every layer weighs alike whatever the size of
its features:
- target "spread": a smooth eps^l of v_c = sigma_c^l / mean_c sigma_c^l (the mean over the
  classes, in the graph): smax_c v_c - smin_c v_c with smax(v) = T log mean_c exp(v_c / T)
  and smin(v) = -T log mean_c exp(-v_c / T), 0 when the classes agree, max - min as the
  temperature T -> 0. Dividing by the current mean means the penalty cannot be met by
  shrinking a layer's features as a whole;
- target "deviation": mean_c ((sigma_c^l - sigma_c^orig) / s^l)^2, the deviation of each
  class's sigma from the original model's, relative to s^l, the original's mean sigma over
  the retained classes.
The loss on a retain batch is CE + weight * (the mean of the layer penalties).

Statistics (`statistics`), the sigma_c^l the penalty is computed from:
- "ema" (default): a running estimate per layer and retained class, sigma_hat_c =
  (1 - m) * run_c + m * sigma_c(batch) for the classes in the batch (m = `sigma_momentum`),
  sigma_hat_c = run_c for the others, and run_c <- sigma_hat_c (detached) after each batch;
  run starts at the reference. Only the current batch's sigma_c carries the graph, so the
  penalty is an exact function of the weights within a step and its gradient is
  m * dpenalty/dsigma_hat * dsigma_c(batch)/dweights.
- "batch": sigma_c of the current batch alone, over the classes present in it.
Why "ema": a cpu-profile batch of 128 holds about 13 images of a class, and sigma_c over 13
images is mostly sampling noise, so with "batch" the deviation penalty of the unchanged
original is already about its value after unlearning (the noise floor), and the gradient of
E[(sigma_c(batch) - ref)^2] = (E sigma_c - ref)^2 + Var sigma_c(batch) partly pushes down the
estimator's own variance rather than the deviation. The running estimate averages about
(2 - m) / m batches (19 at m = 0.1: some 250 images per class), which divides the noise in
the penalty's value and in the factor dpenalty/dsigma_hat of its gradient by about
sqrt((2 - m) / m) while the gradient still comes from the current batch (no second forward).
Every retained class enters every batch's penalty (from its running value). The batch's own
statistics are kept, rather than eval-mode ones, because they are what training flows
through: BatchNorm in train mode normalizes with the batch's mean and variance. The
comparison of the two on real data (penalty noise against signal, and how far each moves the
eval-mode eps on seed 0) is `benchmarks/keep_gap_statistics.py`.

The reference (sigma_c^orig and s^l) is measured once, before unlearning, on D_r, as the
penalty will see it: the original in train mode (BatchNorm normalizes with the batch's own
statistics during training), on batches of the training size with the same augmentation,
the mean of the per-batch sigmas weighted by the class's images; so the penalty's
"deviation" is 0 (up to sampling noise) as long as unlearning leaves the layers unchanged.
Retrain is never used.

Logs (in every result file, `stats.logs`): the weight and statistics used, per epoch the
penalty (mean over the penalized batches), the cross-entropy of those batches, and the
penalty's share of their loss, sum(weight * penalty) / sum(CE + weight * penalty). The
hooks cost one more pass over each normalization output per retain batch;
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
SHORT = "KeepGap"  # the name in tables and verdicts (TITLE: in headings)
DEFAULTS = dict(rl.DEFAULTS,
                weight=1.0,          # penalty weight; 0 is RL exactly
                target="deviation",  # deviation: each sigma_c^l's distance to the original's | spread: a smooth eps^l
                layers="all",        # normalization layers penalized: all | first_half | last_half (forward order)
                temperature=0.1,     # of the smooth max / min ("spread"), in units of the classes' mean sigma
                statistics="ema",    # sigma_c^l of the penalty: ema (running, the batch's graph) | batch (alone)
                sigma_momentum=0.1)  # "ema": the current batch's share of the running estimate
# The profiles that run it, each with what it changes of DEFAULTS there (the cpu and smoke budgets)
PROFILES = {"smoke": {"epochs": 1}, "cpu": {"epochs": 3, "batch_size": 128}, "paper": {}}
TARGETS = ("spread", "deviation")
LAYER_SETS = ("all", "first_half", "last_half")
STATISTICS = ("ema", "batch")
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

    sigmas[layer]: sigma_c of `classes` (in that order); reference[layer] = (the original's
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


class RunningSigmas:
    """The "ema" statistics: per layer, a running sigma_c of every retained class (module docstring).

    `mix(sigmas, present)` returns, per layer, sigma_hat over `retained` (in that order), with
    the graph of the batch's sigmas of the classes `present`, and moves the running values
    to sigma_hat (detached).
    """

    def __init__(self, reference: dict, retained: list[int], momentum: float):
        self.retained, self.momentum = list(retained), float(momentum)
        self.running = {name: ref.detach().clone() for name, (ref, _) in reference.items()}

    def mix(self, sigmas: dict, present: list[int]) -> dict:
        m, out, idx = self.momentum, {}, None
        for name, sigma in sigmas.items():
            running = self.running[name].to(device=sigma.device, dtype=sigma.dtype)
            idx = torch.tensor(present, device=sigma.device) if idx is None else idx
            full = running.index_put((idx,), (1 - m) * running[idx] + m * sigma)
            self.running[name] = full.detach()
            out[name] = full[self.retained]
        return out


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
    if hp["statistics"] not in STATISTICS:
        raise ValueError(f"unknown statistics {hp['statistics']!r}; valid choices: {', '.join(STATISTICS)}")
    if not hp["weight"] >= 0:
        raise ValueError(f"weight {hp['weight']!r} must be >= 0")
    if not hp["temperature"] > 0:
        raise ValueError(f"temperature {hp['temperature']!r} must be > 0")
    if not 0 < hp["sigma_momentum"] <= 1:
        raise ValueError(f"sigma_momentum {hp['sigma_momentum']!r} must be in (0, 1]")


def unlearn(model, split, hp, ctx):
    check(hp)
    layers = penalized_layers(model, hp["layers"])
    retained = [c for c in range(split.num_classes) if c != split.forget_class]
    reference = reference_sigmas(model, split, layers, retained, hp["batch_size"], ctx.seed + 3)
    first = reference[layers[0]][0]
    retained = [c for c in retained if not torch.isnan(first[c])]   # classes the reference has seen
    running = RunningSigmas(reference, retained, hp["sigma_momentum"]) if hp["statistics"] == "ema" else None
    batches, steps = rl.random_label_batches(split, hp, ctx.seed)
    forget_steps = epochs_steps(len(split.x_forget), hp["batch_size"])
    phase = {"retain": False}
    weight = hp["weight"]
    logged: dict[int, list] = {}          # epoch -> [(penalty, CE) of each penalized batch]

    def tagged(epoch):
        """RL's batches, unchanged; the first forget_steps of each epoch are D_f's."""
        for i, (x, y) in enumerate(batches(epoch)):
            phase["retain"] = i >= forget_steps
            yield x, y

    with class_sigma_hooks(model, layers) as (sigmas, batch):
        def loss_fn(m, x, y, epoch):
            sigmas.clear()
            classes = penalized_classes(y, retained) if phase["retain"] else []
            on = len(classes) >= (1 if running is not None else 2)
            batch.update(y=y if on else None, classes=torch.tensor(classes, device=y.device) if on else None)
            ce = F.cross_entropy(m(x), y)
            if not on:
                return ce
            if running is not None:
                penalty = gap_penalty(running.mix(sigmas, classes), retained, reference, hp["target"],
                                      hp["temperature"])
            else:
                penalty = gap_penalty(sigmas, classes, reference, hp["target"], hp["temperature"])
            logged.setdefault(epoch, []).append(torch.stack([penalty.detach(), ce.detach()]).float())
            return ce + weight * penalty if weight else ce     # weight 0: RL's loss and gradient exactly

        loss = sgd_finetune(model, hp, hp["epochs"], tagged, steps, loss_fn, desc="KeepGap")
    per_epoch = [torch.stack(logged[e]).double() if e in logged else None for e in range(hp["epochs"])]
    nan = float("nan")
    return model, {"loss_per_epoch": loss,
                   "weight": weight,
                   "statistics": hp["statistics"],
                   "penalty_per_epoch": [nan if t is None else float(t[:, 0].mean()) for t in per_epoch],
                   "penalized_ce_per_epoch": [nan if t is None else float(t[:, 1].mean()) for t in per_epoch],
                   "penalty_share_per_epoch": [nan if t is None else
                                               float(weight * t[:, 0].sum() / (t[:, 1] + weight * t[:, 0]).sum())
                                               for t in per_epoch],
                   "penalized_batches_per_epoch": [0 if t is None else len(t) for t in per_epoch],
                   "penalized_layers": layers,
                   "reference_scale": {n: reference[n][1] for n in layers}}
