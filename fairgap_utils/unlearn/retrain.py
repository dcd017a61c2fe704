"""Retrain (exact unlearning): train from scratch on the retain set D_r.

Same architecture, optimizer, schedule and epochs as the original model (the profile's
TrainConfig); only the data differ. Every other method is compared against it.
"""
from ..models import create_model
from ..train import prepare, seed_everything, train_supervised

TITLE = "Retrain"
EXACT = True
DEFAULTS = {}


def unlearn(model, split, hp, ctx):
    seed_everything(ctx.seed + 1000)
    fresh = prepare(create_model(ctx.arch, split.num_classes), split.x_retain.device)
    log = train_supervised(fresh, split.x_retain, split.y_retain, ctx.train_config, ctx.seed + 1000,
                           desc=f"retrain {ctx.arch}", compile=ctx.compile)
    return fresh, {"loss_per_epoch": log["loss_per_epoch"]}
