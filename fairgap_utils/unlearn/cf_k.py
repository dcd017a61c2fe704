"""CF-k (Goel et al. 2022): fine-tune only the last k blocks on D_r; the rest stays frozen.

A block is a unit of `models.blocks`: the stem, each residual block (or encoder layer)
and the classifier head, so k=1 trains the head only. BatchNorms inside the trained
blocks train too; frozen blocks keep their weights and running statistics.
"""
from torch.nn import functional as F

from ..models import blocks
from .common import FINETUNE_DEFAULTS, loader, set_trainable, sgd_finetune

TITLE = "CF-k (fine-tune the last k blocks)"
DEFAULTS = dict(FINETUNE_DEFAULTS, k=1)


def unlearn(model, split, hp, ctx):
    units = blocks(model)
    k = int(hp["k"])
    if not 1 <= k <= len(units):
        raise ValueError(f"k={k} is out of range; this model has {len(units)} blocks (1-{len(units)})")
    frozen = set_trainable(model, units[-k:])
    batches, steps = loader(split.x_retain, split.y_retain, hp, ctx.seed)
    loss = sgd_finetune(model, hp, hp["epochs"], batches, steps,
                        lambda m, x, y, e: F.cross_entropy(m(x), y), frozen=frozen, desc=f"CF-{k}")
    return model, {"loss_per_epoch": loss, "blocks_total": len(units)}
