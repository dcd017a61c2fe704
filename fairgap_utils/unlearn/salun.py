"""SalUn (Fan et al., ICLR 2024): random labels, applied only to the salient weights.

Saliency mask: the gradient of -CE summed over all of D_f at the original weights (no
step), |g| ranked globally over all parameters, the top `mask_ratio` kept. Weights
outside the mask are restored after every optimizer step, so momentum and weight decay
cannot move them either (merely zeroing their gradients would let weight decay shrink
them, the bug the official code fixed).
"""
import torch
from torch.nn import functional as F

from .. import data as D
from ..train import autocast
from .common import FINETUNE_DEFAULTS, sgd_finetune
from .rl import random_label_batches

TITLE = "SalUn (saliency-masked random labels)"
SHORT = "SalUn"  # the name in tables and verdicts (TITLE: in headings)
DEFAULTS = dict(FINETUNE_DEFAULTS, mask_ratio=0.5)
# The profiles that run it, each with what it changes of DEFAULTS there (the cpu and smoke budgets)
PROFILES = {"smoke": {"epochs": 1}, "cpu": {"epochs": 3, "batch_size": 128}, "paper": {}}


def saliency_mask(model, split, ratio: float, batch_size: int) -> dict[str, torch.Tensor]:
    """{parameter name: bool mask} keeping the top `ratio` of |grad of -CE over D_f|."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"mask_ratio {ratio!r} must lie in (0, 1]")
    model.eval()
    model.zero_grad(set_to_none=True)
    for x, y in D.batches(split.x_forget, split.y_forget, batch_size):
        with autocast(x.device):
            (-F.cross_entropy(model(x), y, reduction="sum")).backward()
    grads = {n: p.grad.detach().abs() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    flat = torch.cat([g.flatten() for g in grads.values()]).float()
    keep = max(1, int(round(ratio * flat.numel())))
    threshold = torch.topk(flat, keep).values.min()   # the smallest of the `keep` largest
    return {n: g.float() >= threshold for n, g in grads.items()}


def unlearn(model, split, hp, ctx):
    mask = saliency_mask(model, split, hp["mask_ratio"], hp["batch_size"])
    params = dict(model.named_parameters())
    names = list(mask)
    tensors = [params[n] for n in names]
    # p <- p * m + frozen * (1 - m): exactly p where m = 1 and exactly the frozen value where
    # m = 0, in two multi-tensor kernels per step instead of two kernels per parameter
    keep = [mask[n].to(params[n].dtype) for n in names]
    frozen_outside = [params[n].detach() * (~mask[n]).to(params[n].dtype) for n in names]

    @torch.no_grad()
    def restore_masked_out():
        torch._foreach_mul_(tensors, keep)
        torch._foreach_add_(tensors, frozen_outside)

    batches, steps = random_label_batches(split, hp, ctx.seed)
    loss = sgd_finetune(model, hp, hp["epochs"], batches, steps,
                        lambda m, x, y, e: F.cross_entropy(m(x), y), after_step=restore_masked_out, desc="SalUn")
    kept = sum(int(m.sum()) for m in mask.values())
    per_layer = {n: float(m.float().mean()) for n, m in mask.items()}
    return model, {"loss_per_epoch": loss, "mask_ratio_realized": kept / sum(m.numel() for m in mask.values()),
                   "trainable_params": kept, "mask_share_per_parameter": per_layer}
