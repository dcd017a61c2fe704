"""BS, Boundary Shrink (Chen et al., CVPR 2023): relabel each forget image across the boundary.

For every forget image an FGSM step of size `bound` on a frozen copy of the original
finds a neighbour across the decision boundary; the image is relabelled with the frozen
model's prediction on that neighbour, and the model is fine-tuned on D_f with those labels.
"""
import torch
from torch.nn import functional as F

from .. import data as D
from ..attacks import fgsm
from .common import loader, sgd_finetune

TITLE = "Boundary Shrink (BS)"
SHORT = "BS"  # the name in tables and verdicts (TITLE: in headings)
DEFAULTS = dict(epochs=10, lr=1e-5, batch_size=64, weight_decay=5e-4, momentum=0.9, schedule="constant",
                bound=0.1)
# The profiles that run it, each with what it changes of DEFAULTS there (the cpu and smoke budgets)
PROFILES = {"smoke": {"epochs": 2, "lr": 1e-3}, "cpu": {"epochs": 5, "lr": 1e-3, "batch_size": 32}, "paper": {}}


def shrink_labels(original, split, bound: float, batch_size: int = 256) -> torch.Tensor:
    """The frozen model's prediction on an FGSM neighbour of every forget image."""
    labels = []
    for x, y in D.batches(split.x_forget, split.y_forget, batch_size):
        neighbour = fgsm(original, x, y, bound)
        with torch.no_grad():
            labels.append(original(neighbour).argmax(1))
    return torch.cat(labels) if labels else split.y_forget.clone()


def unlearn(model, split, hp, ctx):
    new_labels = shrink_labels(ctx.original, split, hp["bound"])
    same = float((new_labels == split.y_forget).float().mean()) if len(new_labels) else float("nan")
    batches, steps = loader(split.x_forget, new_labels, hp, ctx.seed, augment=False)
    loss = sgd_finetune(model, hp, hp["epochs"], batches, steps,
                        lambda m, x, y, e: F.cross_entropy(m(x), y), desc="BS")
    return model, {"loss_per_epoch": loss, "label_unchanged_rate": same, "label_flip_rate": 1 - same,
                   "new_label_histogram": torch.bincount(new_labels, minlength=split.num_classes).tolist()}
