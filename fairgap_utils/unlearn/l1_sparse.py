"""l1-sparse (Jia et al., NeurIPS 2023): FT on D_r plus gamma_t * ||theta||_1, gamma_t -> 0 linearly."""
import torch
from torch.nn import functional as F

from .common import FINETUNE_DEFAULTS, loader, sgd_finetune

TITLE = "l1-sparse fine-tuning"
SHORT = "ℓ1-sparse"  # the name in tables and verdicts (TITLE: in headings)
DEFAULTS = dict(FINETUNE_DEFAULTS, alpha=1e-4)
# The profiles that run it, each with what it changes of DEFAULTS there (the cpu and smoke budgets)
PROFILES = {"smoke": {"epochs": 1}, "cpu": {"epochs": 3, "batch_size": 128}, "paper": {}}


def unlearn(model, split, hp, ctx):
    batches, steps = loader(split.x_retain, split.y_retain, hp, ctx.seed)
    epochs = hp["epochs"]
    params = [p for p in model.parameters()]

    def loss_fn(m, x, y, epoch):
        weight = hp["alpha"] * (1 - epoch / epochs)
        l1 = torch.cat([p.flatten() for p in params]).abs().sum()
        return F.cross_entropy(m(x), y) + weight * l1

    loss = sgd_finetune(model, hp, epochs, batches, steps, loss_fn, desc="l1-sparse")
    return model, {"loss_per_epoch": loss}
