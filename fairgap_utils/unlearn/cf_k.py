"""CF-k (Goel et al. 2022): fine-tune only the last k layers on D_r; the rest stays frozen.

k counts Conv/Linear layers from the end, as Goel et al. do (`models.weight_layers`): k = 1
is the classifier, k = 2 adds the layer before it, and so on; the normalization layers
lying between the k layers train too (`common.last_k`). unit="block" counts blocks instead
(stem, residual blocks or encoder layers, head: `models.blocks`), the count of the SCRUB
code base's CF-k.

frozen_mode: "train" (default, Goel et al.'s official code) keeps the whole model in train
mode, so the frozen layers' BatchNorm running statistics are re-estimated on D_r while
their weights stay fixed (with k = 1 the features still move); "eval" puts the frozen
layers in eval mode, so everything before the k layers is bit-identical to the original.
"""
from torch.nn import functional as F

from .common import FINETUNE_DEFAULTS, check_frozen_mode, last_k, loader, set_trainable, sgd_finetune

TITLE = "CF-k (fine-tune the last k layers)"
SHORT = "CF-k"  # the name in tables and verdicts (TITLE: in headings)
DEFAULTS = dict(FINETUNE_DEFAULTS, k=1,
                unit="layer",         # layer: Conv/Linear layers (Goel et al.) | block: stem, residual blocks, head
                frozen_mode="train")  # train: frozen layers' BatchNorm statistics follow D_r (Goel et al.); eval: fixed
# The profiles that run it, each with what it changes of DEFAULTS there (the cpu and smoke budgets)
PROFILES = {"smoke": {"epochs": 1}, "cpu": {"epochs": 3, "batch_size": 128}, "paper": {}}


def unlearn(model, split, hp, ctx):
    check_frozen_mode(hp["frozen_mode"])
    sel = last_k(model, hp["k"], hp["unit"])
    frozen = set_trainable(model, sel.trainable)
    batches, steps = loader(split.x_retain, split.y_retain, hp, ctx.seed)
    loss = sgd_finetune(model, hp, hp["epochs"], batches, steps, lambda m, x, y, e: F.cross_entropy(m(x), y),
                        frozen=frozen if hp["frozen_mode"] == "eval" else (), desc=f"CF-{hp['k']}")
    return model, {"loss_per_epoch": loss, "units_total": sel.total, "units_trained": list(sel.units)}
