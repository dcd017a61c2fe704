"""FGSM and PGD in [0, 1] pixel space, and accuracy-under-attack sweeps.

Both follow torchattacks' definitions exactly (a test checks it): the model is in eval
mode, the loss is cross-entropy on the true label, and images are clipped to [0, 1].
"""
from __future__ import annotations

import torch
from torch.nn import functional as F

from . import data as D
from .errors import FairgapError, check_choice, check_range
from .train import autocast, device_of


def _check_pixels(x, attack: str) -> None:
    if not x.is_floating_point():
        raise FairgapError(f"{attack} takes float images in [0, 1], got {x.dtype}; convert uint8 with data.to_float")
    D.check_images(x, f"{attack} images")


def _input_grad(model, x, y):
    x = x.clone().detach().requires_grad_(True)
    with autocast(x.device):
        loss = F.cross_entropy(model(x).float(), y)
    return torch.autograd.grad(loss, x)[0]


def fgsm(model, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """x + eps * sign(grad_x CE(model(x), y)), clipped to [0, 1]."""
    check_range("FGSM epsilon", eps, 0.0, 1.0)
    _check_pixels(x, "FGSM")
    model.eval()
    return (x + eps * _input_grad(model, x, y).sign()).clamp(0, 1).detach()


def pgd(model, x: torch.Tensor, y: torch.Tensor, eps: float, alpha: float | None = None,
        steps: int = 10, random_start: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """L-inf PGD: `steps` signed-gradient steps of size alpha, projected to the eps-ball and [0, 1].

    alpha defaults to 2.5 * eps / steps (Madry et al.); random_start draws the start
    uniformly in the eps-ball.
    """
    check_range("PGD epsilon", eps, 0.0, 1.0)
    if steps < 1:
        raise FairgapError(f"PGD steps {steps!r} must be at least 1")
    _check_pixels(x, "PGD")
    alpha = 2.5 * eps / steps if alpha is None else alpha
    model.eval()
    adv = x.clone().detach()
    if random_start:
        noise = torch.rand(x.shape, device=x.device, generator=generator) * 2 - 1
        adv = (adv + eps * noise).clamp(0, 1).detach()
    for _ in range(steps):
        adv = adv + alpha * _input_grad(model, adv, y).sign()
        adv = (x + (adv - x).clamp(-eps, eps)).clamp(0, 1).detach()
    return adv


def accuracy_under_attack(model, x: torch.Tensor, y: torch.Tensor, attack: str, eps_list,
                          batch_size: int = 500, seed: int = 0, **kw) -> dict[float, float]:
    """{eps: accuracy in %} for uint8 (or [0, 1] float) images x; eps in [0, 1] units; eps 0 is clean accuracy."""
    check_choice("attack", attack, ("fgsm", "pgd"))
    if attack == "fgsm":
        return _fgsm_sweep(model, x, y, eps_list, batch_size)
    device = device_of(model)
    gen = torch.Generator(device=device).manual_seed(seed)
    fn = {"fgsm": fgsm, "pgd": lambda m, xb, yb, e: pgd(m, xb, yb, e, generator=gen, **kw)}[attack]
    result = {}
    for eps in eps_list:
        correct = torch.zeros((), dtype=torch.long, device=device)  # counted on the device: one sync per eps
        for xb, yb in D.batches(x, y, batch_size):
            xb, yb = xb.to(device), yb.to(device)
            adv = fn(model, xb, yb, eps) if eps > 0 else xb
            with torch.no_grad(), autocast(device):
                correct += (model(adv).argmax(1) == yb).sum()
        result[float(eps)] = 100.0 * correct.item() / max(len(x), 1)
    return result


def _fgsm_sweep(model, x, y, eps_list, batch_size) -> dict[float, float]:
    """FGSM accuracy at every eps from one input gradient per batch.

    The gradient is taken at the clean image, so it does not depend on eps: each image
    costs one backward pass for the whole sweep instead of one per eps, with the same
    adversarial images `fgsm` makes.
    """
    for eps in eps_list:
        check_range("FGSM epsilon", eps, 0.0, 1.0)
    device = device_of(model)
    model.eval()
    correct = dict.fromkeys((float(e) for e in eps_list), 0)
    for xb, yb in D.batches(x, y, batch_size):
        xb, yb = xb.to(device), yb.to(device)
        sign = _input_grad(model, xb, yb).sign() if any(e > 0 for e in correct) else None
        for eps in correct:
            adv = (xb + eps * sign).clamp(0, 1) if eps > 0 else xb
            with torch.no_grad(), autocast(device):
                correct[eps] += (model(adv).argmax(1) == yb).sum().item()
    return {eps: 100.0 * c / max(len(x), 1) for eps, c in correct.items()}
