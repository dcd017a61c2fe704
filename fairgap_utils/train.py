"""The one training loop, used by the original model, Retrain and every fine-tuning method.

`fit` runs epochs of (batches -> loss -> step) with bf16 autocast on CUDA, an optional
`torch.compile`, a LR schedule stepped per batch and a progress bar. Methods differ only
in the batches they feed and the loss they compute, so each is a few lines on top of it.
"""
from __future__ import annotations

import contextlib
import os
import random
import time
from typing import Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import data as D


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def generator_for(x: torch.Tensor, seed: int) -> torch.Generator:
    return torch.Generator(device=x.device).manual_seed(seed)


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def autocast(device: torch.device):
    """bf16 autocast on CUDA; plain float32 elsewhere (deterministic on CPU)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare(model: nn.Module, device) -> nn.Module:
    """The model on `device` in channels_last memory format: convolutions run faster that way on
    GPUs and on CPUs alike (ResNet-18/8 trains 1.25x faster on one CPU core); a ViT is unaffected."""
    return model.to(device).to(memory_format=torch.channels_last)


def progress(iterable, **kw):
    """tqdm progress bar; FAIRGAP_PROGRESS=0 turns it off (the book runs set it)."""
    from tqdm.auto import tqdm  # lazy: tqdm only when a progress bar is drawn
    return tqdm(iterable, disable=os.environ.get("FAIRGAP_PROGRESS", "1") == "0", mininterval=2, **kw)


def make_optimizer(params, optimizer: str = "sgd", lr: float = 0.01, weight_decay: float = 5e-4,
                   momentum: float = 0.9, nesterov: bool = True):
    """SGD or AdamW over the trainable `params`.

    `nesterov` (SGD with momentum only): True for the original and Retrain (TrainConfig);
    the unlearning methods pass False, plain momentum, as every official code base does.
    The update runs as one multi-tensor (foreach) step, PyTorch's default on GPUs only, on CPUs too:
    the same weights bit for bit as the per-tensor loop, and never slower (docs/computing.md).
    """
    params = [p for p in params if p.requires_grad]
    if optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                           nesterov=nesterov and momentum > 0, foreach=True)


def make_scheduler(opt, schedule: str, total_steps: int, lr: float):
    if schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(total_steps, 1),
                                                   pct_start=0.25, anneal_strategy="linear")
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total_steps, 1))
    return None


def fit(model: nn.Module, epochs: int, epoch_batches: Callable[[int], Iterable],
        loss_fn: Callable, optimizer, scheduler=None, frozen: Iterable[nn.Module] = (),
        after_step: Callable[[], None] | None = None, desc: str = "train", compile: bool = False) -> list:
    """Train `model` for `epochs`; `epoch_batches(epoch)` yields (x, y); returns mean loss per epoch.

    `loss_fn(model, x, y, epoch)` returns a scalar. Modules in `frozen` stay in eval mode
    (their BatchNorm statistics do not move). `after_step` runs after every optimizer step.
    """
    device = device_of(model)
    step_model = torch.compile(model) if compile and device.type == "cuda" else model
    history = []
    bar = progress(range(epochs), desc=desc, leave=False)
    for epoch in bar:
        model.train()
        for m in frozen:
            m.eval()
        total, count = torch.zeros((), device=device), 0
        for x, y in epoch_batches(epoch):
            x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                loss = loss_fn(step_model, x, y, epoch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if after_step is not None:
                after_step()
            total += loss.detach().float() * len(x)
            count += len(x)
        history.append(float(total) / max(count, 1))
        bar.set_postfix(loss=f"{history[-1]:.3f}")
    model.eval()
    return history


def cross_entropy(label_smoothing: float = 0.0):
    def loss(model, x, y, epoch):
        return F.cross_entropy(model(x), y, label_smoothing=label_smoothing)
    return loss


def train_supervised(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg, seed: int,
                     desc: str = "train", compile: bool = False) -> dict:
    """Train from the current weights on uint8 images `x` with labels `y` under a TrainConfig."""
    gen = generator_for(x, seed)
    steps = epochs_steps(len(x), cfg.batch_size) * cfg.epochs
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.weight_decay)
    sched = make_scheduler(opt, cfg.schedule, steps, cfg.lr)
    start = time.perf_counter()
    history = fit(model, cfg.epochs,
                  lambda e: D.batches(x, y, cfg.batch_size, shuffle=True, augment_images=cfg.augment, generator=gen),
                  cross_entropy(cfg.label_smoothing), opt, sched, desc=desc, compile=compile)
    return {"loss_per_epoch": history, "train_time_s": time.perf_counter() - start}


def epochs_steps(n: int, batch_size: int) -> int:
    return -(-n // batch_size)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Float32 logits for uint8 (or [0, 1] float) images, in eval mode."""
    model.eval()
    device = device_of(model)
    out = []
    for xb, _ in D.batches(x, torch.zeros(len(x), dtype=torch.long, device=x.device), batch_size):
        with autocast(device):
            out.append(model(xb.to(device)).float())
    return torch.cat(out) if out else torch.zeros(0)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Accuracy in percent (nan for an empty set)."""
    if len(x) == 0:
        return float("nan")
    return 100.0 * (predict(model, x, batch_size).argmax(1).cpu() == y.cpu()).float().mean().item()
