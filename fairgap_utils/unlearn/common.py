"""What the fine-tuning methods share: an SGD fine-tune on some batches with some loss,
and, for CF-k / EU-k, which parameters the last k layers (or blocks) are."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import data as D
from ..hooks import norm_layers
from ..models import blocks, create_model, weight_layers
from ..train import epochs_steps, fit, generator_for, make_optimizer, make_scheduler


@dataclass
class Context:
    """What a method may need besides the model and the split."""
    original: nn.Module        # the frozen original model (teacher for SCRUB, oracle for BS)
    train_config: object       # the TrainConfig of the original model (used by Retrain)
    arch: str
    seed: int
    compile: bool = False


def sgd_finetune(model, hp: dict, epochs: int, epoch_batches, steps_per_epoch: int, loss_fn,
                 params=None, frozen=(), after_step=None, desc="unlearn") -> list:
    """Fine-tune at hp['lr'] with plain momentum hp['momentum'] (no Nesterov, as in every
    official code base) and weight decay hp['weight_decay'], cosine or constant schedule.

    SGD unless hp['optimizer'] says otherwise (EU-k with the original's budget on a ViT: adamw).
    """
    opt = make_optimizer(model.parameters() if params is None else params, hp.get("optimizer", "sgd"), hp["lr"],
                         hp.get("weight_decay", 5e-4), hp.get("momentum", 0.9), nesterov=False)
    sched = make_scheduler(opt, hp.get("schedule", "constant"), epochs * steps_per_epoch, hp["lr"])
    return fit(model, epochs, epoch_batches, loss_fn, opt, sched, frozen=frozen, after_step=after_step, desc=desc)


def loader(x, y, hp, seed, augment=True):
    """(epoch -> batches, steps per epoch) over uint8 tensors, shuffled with the run's seed."""
    gen = generator_for(x, seed)
    return (lambda epoch: D.batches(x, y, hp["batch_size"], shuffle=True, augment_images=augment, generator=gen),
            epochs_steps(len(x), hp["batch_size"]))


# --------------------------------------------------------------------------- CF-k / EU-k

UNITS = ("layer", "block")          # what k counts: Conv/Linear layers (Goel et al.) or blocks
FROZEN_MODES = ("train", "eval")    # the frozen layers during training: train mode (Goel et al.'s code) or eval


@dataclass(frozen=True)
class LastK:
    """The last k units of a model and what CF-k / EU-k do to them.

    Names are those of `model.named_parameters()` / `model.state_dict()` for the model given.
    """
    units: tuple        # the k units counted, in forward order (weight layer or block names)
    total: int          # units in the model: the largest valid k
    reinit: tuple       # state_dict keys EU-k re-initializes
    trainable: tuple    # parameters CF-k / EU-k train


def last_k(model: nn.Module, k: int, unit: str = "layer") -> LastK:
    """The last k weight layers (unit "layer") or blocks (unit "block") of `model`.

    unit "layer" (Goel et al.): the k weight layers of `models.weight_layers` train and are
    what EU-k re-initializes; the normalization layers lying between them (after the first
    of the k in forward order) train too, with their trained values (EU-k does not
    re-initialize them, as in Goel et al.'s code). Parameters of no weight or normalization
    layer (the ViT's class token and position embedding) belong to the first weight layer,
    the patch embedding. unit "block": every parameter of the last k `models.blocks` trains
    and is re-initialized, normalization statistics included.
    """
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; valid choices: {', '.join(UNITS)}")
    modules = list(model.named_modules())
    prefix = {id(m): name for name, m in modules}
    position = {id(m): i for i, (_, m) in enumerate(modules)}

    def own(m):
        return [f"{prefix[id(m)]}.{n}" if prefix[id(m)] else n for n, _ in m.named_parameters(recurse=False)]

    k = int(k)
    if unit == "block":
        units = blocks(model)
        _check_k(k, len(units), "blocks")
        chosen = units[-k:]
        params = {id(p) for u in chosen for p in u.parameters()}
        bufs = {id(b) for u in chosen for b in u.buffers()}
        trainable = [n for n, p in model.named_parameters() if id(p) in params]
        reinit = trainable + [n for n, b in model.named_buffers() if id(b) in bufs]
        names = [(prefix.get(id(u)) or "+".join(prefix[id(c)] for c in u.children())).replace("net.", "")
                 for u in chosen]
        return LastK(tuple(names), len(units), tuple(reinit), tuple(trainable))

    layers = weight_layers(model)
    _check_k(k, len(layers), "weight layers")
    chosen = layers[-k:]
    norms = [m for _, m in norm_layers(model)]
    claimed = {n for _, m in layers for n in own(m)} | {n for m in norms for n in own(m)}
    reinit = [n for _, m in chosen for n in own(m)]
    if k == len(layers):   # the patch embedding's class token and position embedding
        reinit += [n for n, _ in model.named_parameters() if n not in claimed]
    first = position[id(chosen[0][1])]
    between = [n for m in norms if position[id(m)] > first for n in own(m)]
    return LastK(tuple(name for name, _ in chosen), len(layers), tuple(reinit), tuple(reinit + between))


def check_frozen_mode(mode: str) -> None:
    if mode not in FROZEN_MODES:
        raise ValueError(f"unknown frozen_mode {mode!r}; valid choices: {', '.join(FROZEN_MODES)}")


def _check_k(k: int, total: int, what: str) -> None:
    if not 1 <= k <= total:
        raise ValueError(f"k={k} is out of range; this model has {total} {what} (1-{total})")


def set_trainable(model: nn.Module, names) -> list[nn.Module]:
    """Freeze every parameter except those named; return the frozen leaf modules."""
    trainable = set(names)
    for n, p in model.named_parameters():
        p.requires_grad_(n in trainable)
    return [m for m in model.modules() if len(list(m.children())) == 0
            and not any(p.requires_grad for p in m.parameters(recurse=False))]


def init_seed(seed: int) -> int:
    """EU-k's re-initialization seed: never the original's (seed) nor Retrain's (1000 + seed + ...)."""
    return 500 + seed


def initial_model(arch: str, num_classes: int, seed: int) -> nn.Module:
    """A freshly initialized model of `arch` (the model's own init), built under `seed`
    without touching the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return create_model(arch, num_classes)


@torch.no_grad()
def reinitialize(model: nn.Module, fresh: nn.Module, keys) -> None:
    """Copy the state_dict entries `keys` of `fresh` (a newly built model) into `model`."""
    state, new = model.state_dict(), fresh.state_dict()
    for key in keys:
        if key not in new or new[key].shape != state[key].shape:
            raise ValueError(f"the freshly built model has no {key!r} of shape {tuple(state[key].shape)}: "
                             "is the context's arch the model's?")
        state[key].copy_(new[key])


FINETUNE_DEFAULTS = dict(epochs=10, lr=0.01, batch_size=256, weight_decay=5e-4, momentum=0.9, schedule="constant")
