"""EU-k (Goel et al. 2022): re-initialize the last k blocks, then train only them on D_r."""
from torch.nn import functional as F

from ..models import blocks
from .common import FINETUNE_DEFAULTS, loader, reinitialize, set_trainable, sgd_finetune

TITLE = "EU-k (re-initialize and retrain the last k blocks)"
DEFAULTS = dict(FINETUNE_DEFAULTS, k=1, lr=0.05)


def unlearn(model, split, hp, ctx):
    units = blocks(model)
    k = int(hp["k"])
    if not 1 <= k <= len(units):
        raise ValueError(f"k={k} is out of range; this model has {len(units)} blocks (1-{len(units)})")
    reinitialize(units[-k:])
    frozen = set_trainable(model, units[-k:])
    batches, steps = loader(split.x_retain, split.y_retain, hp, ctx.seed)
    loss = sgd_finetune(model, hp, hp["epochs"], batches, steps,
                        lambda m, x, y, e: F.cross_entropy(m(x), y), frozen=frozen, desc=f"EU-{k}")
    return model, {"loss_per_epoch": loss, "blocks_total": len(units)}
