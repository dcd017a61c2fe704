"""FT: fine-tune the whole original model on the retain set D_r (catastrophic forgetting of D_f)."""
from torch.nn import functional as F

from .common import FINETUNE_DEFAULTS, loader, sgd_finetune

TITLE = "Fine-tuning (FT)"
SHORT = "FT"  # the name in tables and verdicts (TITLE: in headings)
DEFAULTS = dict(FINETUNE_DEFAULTS)
# The profiles that run it, each with what it changes of DEFAULTS there (the cpu and smoke budgets)
PROFILES = {"smoke": {"epochs": 1}, "cpu": {"epochs": 3, "batch_size": 128}, "paper": {}}


def unlearn(model, split, hp, ctx):
    batches, steps = loader(split.x_retain, split.y_retain, hp, ctx.seed)
    loss = sgd_finetune(model, hp, hp["epochs"], batches, steps,
                        lambda m, x, y, e: F.cross_entropy(m(x), y), desc="FT")
    return model, {"loss_per_epoch": loss}
