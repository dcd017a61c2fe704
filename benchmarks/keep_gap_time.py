"""Benchmark: KeepGap's wall time against its base method RL's (the bar: at most 2x).

    python benchmarks/keep_gap_time.py                                  # cpu-profile sizes
    python benchmarks/keep_gap_time.py --archs resnet50 vit_small --images-per-class 5000 --batch-size 256

Both methods run through `unlearn.run_method` on the same class-wise split (class 9
forgotten) of random images (time does not depend on what the images show), from the same
randomly initialized model, with the same epochs, batch size and learning rate; KeepGap
with each target and every normalization layer penalized, with its running statistics
(the default) and, for `deviation`, with the current batch's alone. KeepGap's time includes its
reference pass over D_r. Prints the median of `--repeats` interleaved runs and the ratio to RL; it
asserts nothing. On a machine shared with other jobs, run it alone.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("FAIRGAP_PROGRESS", "0")
from fairgap_utils import data as D  # noqa: E402
from fairgap_utils.config import TrainConfig  # noqa: E402
from fairgap_utils.models import create_model  # noqa: E402
from fairgap_utils.train import prepare  # noqa: E402
from fairgap_utils.unlearn import Context, run_method  # noqa: E402


def random_split(per_class: int, device, forget_class: int = 9) -> D.Split:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(10).repeat_interleave(per_class)
    x = torch.randint(0, 256, (len(y), 3, 32, 32), dtype=torch.uint8, generator=g)
    f = y == forget_class
    x, y = x.to(device), y.to(device)
    return D.Split(x_forget=x[f], y_forget=y[f], x_retain=x[~f], y_retain=y[~f], x_val=x[:0], y_val=y[:0],
                   x_test=x[:100], y_test=y[:100], classes=D.CLASS_NAMES["cifar10"], scenario="class",
                   forget_class=forget_class, source="random images")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", nargs="+", default=["resnet18_w8", "vit_tiny"])
    ap.add_argument("--images-per-class", type=int, default=225)   # the cpu profile's training images per class
    ap.add_argument("--batch-size", type=int, default=128)         # the cpu profile's RL batch size
    ap.add_argument("--epochs", type=int, default=3)             # the cpu profile's RL epochs
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    split = random_split(args.images_per_class, device)
    common = dict(epochs=args.epochs, batch_size=args.batch_size, lr=0.01)
    variants = [("rl", "rl", {}), ("keep_gap spread", "keep_gap", {"target": "spread"}),
                ("keep_gap deviation", "keep_gap", {"target": "deviation"}),
                ("keep_gap deviation batch", "keep_gap", {"target": "deviation", "statistics": "batch"})]
    print(f"{device.type}, {torch.get_num_threads()} threads; {len(split.x_retain)} retain / {len(split.x_forget)} "
          f"forget images, batch {args.batch_size}, {args.epochs} epochs, median of {args.repeats}")
    for arch in args.archs:
        torch.manual_seed(0)
        model = prepare(create_model(arch), device).eval()
        ctx = Context(original=model, train_config=TrainConfig(), arch=arch, seed=0)
        for _, method, overrides in variants:
            run_method(method, model, split, ctx, dict(common, epochs=1, **overrides))    # warm-up
        runs = {label: [] for label, _, _ in variants}
        for _ in range(args.repeats):       # interleaved, so that a load change hits every variant alike
            for label, method, overrides in variants:
                runs[label].append(run_method(method, model, split, ctx, dict(common, **overrides))[1]["time_s"])
        times = {label: statistics.median(ts) for label, ts in runs.items()}
        for label, t in times.items():
            print(f"  {arch:12s} {label:26s} {t:7.2f} s  {t / times['rl']:5.2f}x RL")


if __name__ == "__main__":
    main()
