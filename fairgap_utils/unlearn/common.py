"""What the fine-tuning methods share: an SGD fine-tune on some batches with some loss."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .. import data as D
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
    """SGD (momentum 0.9, weight decay hp['weight_decay']) at hp['lr'], cosine or constant schedule."""
    opt = make_optimizer(model.parameters() if params is None else params, "sgd", hp["lr"],
                         hp.get("weight_decay", 5e-4), hp.get("momentum", 0.9))
    sched = make_scheduler(opt, hp.get("schedule", "constant"), epochs * steps_per_epoch, hp["lr"])
    return fit(model, epochs, epoch_batches, loss_fn, opt, sched, frozen=frozen, after_step=after_step, desc=desc)


def loader(x, y, hp, seed, augment=True):
    """(epoch -> batches, steps per epoch) over uint8 tensors, shuffled with the run's seed."""
    gen = generator_for(x, seed)
    return (lambda epoch: D.batches(x, y, hp["batch_size"], shuffle=True, augment_images=augment, generator=gen),
            epochs_steps(len(x), hp["batch_size"]))


def set_trainable(model: nn.Module, modules) -> list[nn.Module]:
    """Freeze every parameter except those of `modules`; return the frozen top-level units."""
    trainable = {id(p) for m in modules for p in m.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)
    return [m for m in model.modules() if len(list(m.children())) == 0
            and not any(id(p) in trainable for p in m.parameters(recurse=False))]


def reinitialize(modules) -> None:
    """Fresh default initialization of every submodule that has one (convs, norms, linears)."""
    for m in modules:
        for sub in m.modules():
            if hasattr(sub, "reset_parameters"):
                sub.reset_parameters()


FINETUNE_DEFAULTS = dict(epochs=10, lr=0.01, batch_size=256, weight_decay=5e-4, momentum=0.9, schedule="constant")
