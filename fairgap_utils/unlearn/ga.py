"""GA: gradient ascent on the forget set (minimize -CE on D_f)."""
from torch.nn import functional as F

from .common import FINETUNE_DEFAULTS, loader, sgd_finetune

TITLE = "Gradient ascent (GA)"
SHORT = "GA"  # the name in tables and verdicts (TITLE: in headings)
DEFAULTS = dict(FINETUNE_DEFAULTS, epochs=5, lr=1e-4)
# The profiles that run it, each with what it changes of DEFAULTS there (the cpu and smoke budgets)
PROFILES = {"smoke": {"epochs": 1, "lr": 1e-2}, "cpu": {"epochs": 3, "lr": 5e-3, "batch_size": 128}, "paper": {}}


def unlearn(model, split, hp, ctx):
    batches, steps = loader(split.x_forget, split.y_forget, hp, ctx.seed)
    loss = sgd_finetune(model, hp, hp["epochs"], batches, steps,
                        lambda m, x, y, e: -F.cross_entropy(m(x), y), desc="GA")
    return model, {"loss_per_epoch": loss}
