"""Benchmark: training throughput per architecture, and wall time per unlearning method.

    python benchmarks/throughput.py --profile cpu            # throughput + method times from results/
    python benchmarks/throughput.py --profile paper --steps 50

1. Throughput (images/s) of `train.fit` (the loop every method uses: on-device augmentation,
   bf16 autocast and channels_last on CUDA) against a plain eager PyTorch loop (float32,
   no augmentation) on the same model, batch and device, measured in the same run.
2. Wall time of every method as stored in the profile's result files, and its share of
   Retrain's time (the bar: every approximate method <= 10% of Retrain).
Prints figures only; it asserts nothing. Without CUDA the numbers are CPU numbers.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("FAIRGAP_PROGRESS", "0")  # figures only, no progress bars between them
from fairgap_utils import data as D  # noqa: E402
from fairgap_utils.config import get_profile  # noqa: E402
from fairgap_utils.models import create_model  # noqa: E402
from fairgap_utils.train import fit, make_optimizer, prepare  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def fit_throughput(arch, batch, steps, device):
    model = prepare(create_model(arch), device)
    x = torch.randint(0, 256, (batch * steps, 3, 32, 32), dtype=torch.uint8, device=device)
    y = torch.randint(0, 10, (batch * steps,), device=device)
    opt = make_optimizer(model.parameters(), "sgd", 0.01)
    loss = lambda m, xb, yb, e: F.cross_entropy(m(xb), yb)  # noqa: E731
    fit(model, 1, lambda e: D.batches(x[:batch * 2], y[:batch * 2], batch, True, True), loss, opt)  # warm-up
    sync(device)
    start = time.perf_counter()
    fit(model, 1, lambda e: D.batches(x, y, batch, True, True), loss, opt)
    sync(device)
    return batch * steps / (time.perf_counter() - start)


def eager_throughput(arch, batch, steps, device):
    model = create_model(arch).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xs = torch.rand(batch, 3, 32, 32, device=device)
    ys = torch.randint(0, 10, (batch,), device=device)
    for i in range(steps + 2):
        if i == 2:
            sync(device)
            start = time.perf_counter()
        loss = F.cross_entropy(model(xs), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync(device)
    return batch * steps / (time.perf_counter() - start)


def method_times(profile_name):
    from fairgap_utils.book.report import load_records, metrics_frame
    try:
        m = metrics_frame(load_records(profile_name))
    except Exception as e:  # no results yet
        print(f"  (no method times: {e})")
        return
    g = m.groupby(["arch", "scenario", "label"]).time_s.mean().unstack("label")
    for (arch, scenario), row in g.iterrows():
        print(f"  {arch} / {scenario}: Retrain {row['retrain']:.1f} s")
        for label, t in row.drop(["retrain", "original"], errors="ignore").sort_values().items():
            print(f"    {label:12s} {t:8.2f} s  {100 * t / row['retrain']:5.1f}% of Retrain")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default=None)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=None)
    args = ap.parse_args()
    p = get_profile(args.profile)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    hw = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"profile {p.name} on {hw}, torch {torch.__version__}")
    print("training throughput (images/s): fairgap fit vs plain eager loop")
    for arch in p.archs:
        batch = args.batch or p.train_config(arch).batch_size
        ours, plain = fit_throughput(arch, batch, args.steps, device), eager_throughput(arch, batch, args.steps, device)
        print(f"  {arch:14s} batch {batch:4d}: fit {ours:9.0f}   eager {plain:9.0f}   ratio {ours / plain:4.2f}")
    print("wall time per method (from the result files)")
    method_times(p.name)


if __name__ == "__main__":
    main()
