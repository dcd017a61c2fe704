"""One training recipe on real CIFAR-10, timed, as the `cpu` profile would train its original.

    taskset -c 0 python benchmarks/cpu_recipe.py resnet18_w8 --per-class 1000 --epochs 20 --lr 0.1
    taskset -c 0 python benchmarks/cpu_recipe.py vit:6x64 --per-class 1000 --epochs 30 --optimizer adamw \
        --lr 2e-3 --wd 0.05 --log recipes.jsonl

The model is a registered architecture or a size to try before registering it:
`resnet18:16` (ResNet-18 layout, first-stage width 16, doubling per stage) or `vit:6x64`
(patch 4, 6 layers, hidden 64, 4 heads, MLP 2x hidden; `vit:6x64h2p8` for 2 heads, patch 8).
The data are the profile's: `n_train_per_class` images per class after 10% of every class
is held out for validation (`data.make_split`), the whole training set (D_r + D_f) as the
original model sees it; the test accuracy is on all 10,000 test images. Training is the
project's own `train.train_supervised` (so `train.fit` with on-device augmentation) on a
model put through `train.prepare`, single-threaded by default (`--threads`).
Prints one line of figures (and appends it as JSON to `--log`); asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("FAIRGAP_PROGRESS", "0")
from fairgap_utils import data as D  # noqa: E402
from fairgap_utils.config import TrainConfig, get_profile  # noqa: E402
from fairgap_utils.errors import FairgapError  # noqa: E402
from fairgap_utils.models import MODELS, CifarResNet, Normalized, _vit, create_model  # noqa: E402
from fairgap_utils.train import accuracy, prepare, seed_everything, train_supervised  # noqa: E402


def build(arch: str):
    """A registered model, or `resnet18:<width>` / `vit:<layers>x<hidden>[h<heads>][p<patch>]`."""
    if arch in MODELS:
        return create_model(arch)
    from torchvision.models.resnet import BasicBlock
    if m := re.fullmatch(r"resnet18:(\d+)", arch):
        w = int(m[1])
        return Normalized(CifarResNet(BasicBlock, [2, 2, 2, 2], (w, 2 * w, 4 * w, 8 * w), 10))
    if m := re.fullmatch(r"vit:(\d+)x(\d+)(?:h(\d+))?(?:p(\d+))?", arch):
        depth, hidden, heads, patch = int(m[1]), int(m[2]), int(m[3] or 4), int(m[4] or 4)
        return Normalized(_vit(depth=depth, heads=heads, hidden=hidden, mlp=2 * hidden, patch=patch))
    raise FairgapError(f"unknown model {arch!r}; valid: {', '.join(MODELS)}, resnet18:<width>, "
                       "vit:<layers>x<hidden>[h<heads>][p<patch>]")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arch")
    ap.add_argument("--per-class", type=int, default=1000, help="training images per class (after validation)")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--optimizer", default="sgd", choices=("sgd", "adamw"))
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--schedule", default="onecycle", choices=("onecycle", "cosine", "constant"))
    ap.add_argument("--ls", type=float, default=0.0, help="label smoothing")
    ap.add_argument("--no-augment", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=None, help="CIFAR-10 copy (default: $FAIRGAP_DATA or the shared JPEG copy)")
    ap.add_argument("--log", default=None, help="append the figures as one JSON line to this file")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = args.data or os.environ.get("FAIRGAP_DATA") or str(
        Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10" / "cifar10-jpeg.npz")
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch, optimizer=args.optimizer, lr=args.lr,
                      weight_decay=args.wd, schedule=args.schedule, label_smoothing=args.ls,
                      augment=not args.no_augment)
    profile = get_profile("cpu", n_train_per_class=args.per_class, n_test_per_class=None)
    split = D.make_split(profile, seed=args.seed, scenario="class", path=data)
    seed_everything(args.seed)
    model = prepare(build(args.arch), "cpu")
    params = sum(p.numel() for p in model.parameters())
    start_cpu = time.process_time()
    log = train_supervised(model, split.x_train, split.y_train, cfg, args.seed)
    cpu_s = time.process_time() - start_cpu
    row = {"arch": args.arch, "params": params, "per_class": args.per_class, "epochs": args.epochs,
           "recipe": {k: v for k, v in vars(cfg).items() if k != "epochs"}, "seed": args.seed,
           "threads": torch.get_num_threads(), "train_s": round(log["train_time_s"], 1), "cpu_s": round(cpu_s, 1),
           "train_acc": round(accuracy(model, split.x_train, split.y_train, 128), 2),
           "val_acc": round(accuracy(model, split.x_val, split.y_val, 128), 2),
           "test_acc": round(accuracy(model, split.x_test, split.y_test, 128), 2),
           "loss_per_epoch": [round(v, 4) for v in log["loss_per_epoch"]]}
    r = row["recipe"]
    print(f"{args.arch:12s} {params / 1e6:5.2f}M  {args.per_class:5d}/class  {args.epochs:3d} ep  "
          f"{r['optimizer']} lr {r['lr']:g} wd {r['weight_decay']:g} b{r['batch_size']} {r['schedule']} "
          f"ls {r['label_smoothing']:g} aug {int(r['augment'])}  {row['train_s']:7.1f} s (cpu {row['cpu_s']:.1f})  "
          f"train {row['train_acc']:5.1f}  val {row['val_acc']:5.1f}  test {row['test_acc']:5.1f}", flush=True)
    if args.log:
        with open(args.log, "a") as f:
            f.write(json.dumps(row) + "\n")
    return row


if __name__ == "__main__":
    try:
        main()
    except FairgapError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
