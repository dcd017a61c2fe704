"""Retrain (exact unlearning): train from scratch on the retain set D_r.

Same architecture, optimizer, schedule and epochs as the original model (the profile's
TrainConfig); only the data differ. Every other method is compared against it.
"""
from ..models import create_model
from ..train import prepare, seed_everything, train_supervised

TITLE = "Retrain"
SHORT = "Retrain"  # the name in tables and verdicts (TITLE: in headings)
EXACT = True
DEFAULTS = dict(replicate=0)  # replicate r >= 1: the same Retrain with another training seed (noise floor)
# The profiles that run it, each with what it changes of DEFAULTS there (the cpu and smoke budgets)
PROFILES = {"smoke": {}, "cpu": {}, "paper": {}}


def training_seed(seed: int, replicate: int = 0) -> int:
    """Retrain's own seed: never the original's, and distinct for every replicate."""
    return 1000 + seed + 10_000 * int(replicate)


def unlearn(model, split, hp, ctx):
    train_seed = training_seed(ctx.seed, hp["replicate"])
    seed_everything(train_seed)
    fresh = prepare(create_model(ctx.arch, split.num_classes), split.x_retain.device)
    log = train_supervised(fresh, split.x_retain, split.y_retain, ctx.train_config, train_seed,
                           desc=f"retrain {ctx.arch}" + (f" replicate {hp['replicate']}" if hp["replicate"] else ""),
                           compile=ctx.compile)
    return fresh, {"loss_per_epoch": log["loss_per_epoch"]}
