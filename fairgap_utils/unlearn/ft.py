"""FT: fine-tune the whole original model on the retain set D_r (catastrophic forgetting of D_f)."""
from torch.nn import functional as F

from .common import FINETUNE_DEFAULTS, loader, sgd_finetune

TITLE = "Fine-tuning (FT)"
SHORT = "FT"  # the name in tables and verdicts (TITLE: in headings)
DEFAULTS = dict(FINETUNE_DEFAULTS)


def unlearn(model, split, hp, ctx):
    batches, steps = loader(split.x_retain, split.y_retain, hp, ctx.seed)
    loss = sgd_finetune(model, hp, hp["epochs"], batches, steps,
                        lambda m, x, y, e: F.cross_entropy(m(x), y), desc="FT")
    return model, {"loss_per_epoch": loss}
