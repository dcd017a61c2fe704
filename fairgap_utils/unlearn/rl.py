"""RL (random labels): each epoch, one pass over D_f with fresh random labels, then one over D_r."""
import itertools

import torch
from torch.nn import functional as F

from .common import FINETUNE_DEFAULTS, loader, sgd_finetune

TITLE = "Random labels (RL)"
SHORT = "RL"  # the name in tables and verdicts (TITLE: in headings)
DEFAULTS = dict(FINETUNE_DEFAULTS)
# The profiles that run it, each with what it changes of DEFAULTS there (the cpu and smoke budgets)
PROFILES = {"smoke": {"epochs": 1}, "cpu": {"epochs": 3, "batch_size": 128}, "paper": {}}


def random_label_batches(split, hp, seed):
    """Per epoch: D_f with labels drawn uniformly from all classes, then D_r with true labels."""
    forget, f_steps = loader(split.x_forget, split.y_forget, hp, seed)
    retain, r_steps = loader(split.x_retain, split.y_retain, hp, seed + 1)
    gen = torch.Generator(device=split.y_forget.device).manual_seed(seed + 2)

    def epoch_batches(epoch):
        relabelled = ((x, torch.randint(0, split.num_classes, y.shape, device=y.device, generator=gen))
                      for x, y in forget(epoch))
        return itertools.chain(relabelled, retain(epoch))
    return epoch_batches, f_steps + r_steps


def unlearn(model, split, hp, ctx):
    batches, steps = random_label_batches(split, hp, ctx.seed)
    loss = sgd_finetune(model, hp, hp["epochs"], batches, steps,
                        lambda m, x, y, e: F.cross_entropy(m(x), y), desc="RL")
    return model, {"loss_per_epoch": loss}
