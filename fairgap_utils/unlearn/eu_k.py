"""EU-k (Goel et al. 2022): re-initialize the last k layers, then train only them on D_r.

k counts as in CF-k (`common.last_k`: Conv/Linear layers by default, k = 1 the classifier;
unit="block" counts blocks). Re-initialization is the model's own: a fresh model of the
same architecture is built (`models.create_model`, seed `common.init_seed(seed)`) and the
k layers' parameters are copied from it, so ResNet convs get kaiming-normal (fan-out), the
ViT head is zero, and so on. As in Goel et al.'s code, the normalization layers between
the k layers keep their trained values and train; with unit="block" every parameter and
statistic of the blocks is re-initialized. frozen_mode as in CF-k (default "train", Goel
et al.'s: the frozen layers' BatchNorm statistics are re-estimated on D_r).

budget, the training run after re-initialization:
- "salun" (default): the SalUn protocol's, as for every other method here: `epochs` (10)
  at `lr`, `schedule` and `batch_size` of these hyperparameters, SGD with plain momentum.
- "original": Goel et al.'s: as long as the original was trained, with its schedule
  (the context's TrainConfig: epochs, batch size, optimizer, peak lr, weight decay,
  schedule, label smoothing, augmentation; SGD without Nesterov); `epochs`, `lr`,
  `batch_size`, `weight_decay` and `schedule` here are then ignored.
"""
from torch.nn import functional as F

from ..train import device_of
from .common import (FINETUNE_DEFAULTS, check_frozen_mode, init_seed, initial_model, last_k, loader, reinitialize,
                     set_trainable, sgd_finetune)

TITLE = "EU-k (re-initialize and retrain the last k layers)"
SHORT = "EU-k"  # the name in tables and verdicts (TITLE: in headings)
DEFAULTS = dict(FINETUNE_DEFAULTS, k=1, lr=0.05,
                unit="layer",          # layer: Conv/Linear layers (Goel et al.) | block: stem, residual blocks, head
                frozen_mode="train",   # train: frozen layers' BatchNorm statistics follow D_r (Goel et al.) | eval
                budget="salun")        # salun: epochs at lr above | original: the original's epochs and schedule
# The profiles that run it, each with what it changes of DEFAULTS there (the cpu and smoke budgets)
PROFILES = {"smoke": {"epochs": 1}, "cpu": {"epochs": 3, "batch_size": 128}, "paper": {}}
BUDGETS = ("salun", "original")


def training_run(hp: dict, train_config) -> tuple[dict, bool, float]:
    """(hyperparameters of the run, augment, label smoothing) under the chosen budget."""
    if hp["budget"] not in BUDGETS:
        raise ValueError(f"unknown budget {hp['budget']!r}; valid choices: {', '.join(BUDGETS)}")
    if hp["budget"] == "salun":
        return hp, True, 0.0
    c = train_config
    return (dict(hp, epochs=c.epochs, lr=c.lr, batch_size=c.batch_size, weight_decay=c.weight_decay,
                 schedule=c.schedule, optimizer=c.optimizer), c.augment, c.label_smoothing)


def unlearn(model, split, hp, ctx):
    check_frozen_mode(hp["frozen_mode"])
    run, augment, smoothing = training_run(hp, ctx.train_config)
    sel = last_k(model, hp["k"], hp["unit"])
    fresh = initial_model(ctx.arch, split.num_classes, init_seed(ctx.seed)).to(device_of(model))
    reinitialize(model, fresh, sel.reinit)
    del fresh
    frozen = set_trainable(model, sel.trainable)
    batches, steps = loader(split.x_retain, split.y_retain, run, ctx.seed, augment=augment)
    loss = sgd_finetune(model, run, run["epochs"], batches, steps,
                        lambda m, x, y, e: F.cross_entropy(m(x), y, label_smoothing=smoothing),
                        frozen=frozen if hp["frozen_mode"] == "eval" else (), desc=f"EU-{hp['k']}")
    return model, {"loss_per_epoch": loss, "units_total": sel.total, "units_trained": list(sel.units),
                   "training_run": {key: run[key] for key in ("epochs", "lr", "batch_size", "weight_decay", "schedule")}
                   | {"optimizer": run.get("optimizer", "sgd"), "augment": augment, "label_smoothing": smoothing}}
