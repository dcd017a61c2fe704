"""Benchmark: KeepGap's sigma statistics, running ("ema") against the current batch's ("batch").

    python benchmarks/keep_gap_statistics.py --part noise              # minutes: no training but one RL run
    python benchmarks/keep_gap_statistics.py --part effect             # after the calibration: 8-14 runs per arch
    python benchmarks/keep_gap_statistics.py --out benchmarks/keep_gap_statistics.md

On the profile's seed-0 original (class-wise; read from the cache: this script never trains
an original) and the RL model of that seed, both measured on real data:

- `noise`: the penalty as KeepGap's training sees it (train mode, D_r in training batches with
  augmentation, two passes; the second pass is reported), with each statistics, on the
  original and on RL's model, without training. For each model, the penalty of the pass's
  whole-data sigma_c (per class, the image-weighted mean over the batches: little noise) is
  the signal a batch's penalty estimates; the noise is the root-mean-square difference of the
  per-batch penalties from it. For `deviation` the signal on the original is about 0 (it is
  the reference), so the original's per-batch values are pure noise and RL's signal is what
  unlearning moved.
- `effect`: KeepGap with each target from the same original: "ema" at the weight the
  calibration chose; "batch" at the weight the same rule chooses for it (its walk over the
  grid is run here, on validation images, into `--scratch`), and at the "ema" weight times the
  momentum (the same gradient scale); each model measured as the pipeline measures it: eps^l in eval mode on the test
  images (the headline `channel` definition over all classes), and the validation accuracy
  of the retained classes (the calibration's criterion). Printed per run: the change of
  eps against the original and against RL (100 * the layer-mean log ratio), the mean
  distance of sigma_c to the original's (100 * the layer and class mean |log ratio|, the
  `deviation` target), the validation accuracy, and the penalty's share of the loss in
  the first epoch.

Prints markdown tables (and writes them to `--out`); asserts nothing. Uses FAIRGAP_DATA and
the default results and cache folders; one thread unless --threads.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("FAIRGAP_PROGRESS", "0")
from fairgap_utils import data as D  # noqa: E402
from fairgap_utils.computing import pipeline as P  # noqa: E402
from fairgap_utils.computing.keys import original_key  # noqa: E402
from fairgap_utils.config import get_profile  # noqa: E402
from fairgap_utils.errors import FairgapError  # noqa: E402
from fairgap_utils.fairness import class_sigmas  # noqa: E402
from fairgap_utils.train import accuracy, seed_everything  # noqa: E402
from fairgap_utils.unlearn import Context, hyperparameters, run_method  # noqa: E402
from fairgap_utils.unlearn import keep_gap as K  # noqa: E402
from fairgap_utils.unlearn import rl as RL  # noqa: E402



def effect_runs(profile, arch, seed, scratch) -> list[tuple[str, str, float, str]]:
    """(target, statistics, weight, why) of the `effect` part, per target: "ema" at the weight the committed
    calibration chose (results/<profile>/tuning/<arch>/keep_gap.json); "batch" at the weight the same rule
    chooses for it (the calibration's walk, run here into `scratch`: validation images only); and "batch"
    at the "ema" weight times the momentum, where the two gradients have the same scale (the "ema"
    gradient is the momentum times the batch sigma's)."""
    from fairgap_utils.computing import tune as T
    calibrated = profile.replace(keep_gap_calibrated=True)
    ema = T.keep_gap_weights(calibrated, arch)
    overrides = {**profile.method_overrides, "keep_gap": {**profile.method_overrides.get("keep_gap", {}),
                                                          "statistics": "batch"}}
    batch_profile = calibrated.replace(method_overrides=overrides)
    T.run_keep_gap_grid(batch_profile, arch, seed, results=scratch)
    found = T.search_keep_gap(batch_profile, arch, seed, results=scratch)
    m = hyperparameters("keep_gap", profile.method_overrides.get("keep_gap", {}))["sigma_momentum"]
    out = []
    for t, w in ema.items():
        out += [(t, "ema", w, "calibrated"), (t, "batch", found["targets"][t]["weight"], "calibrated"),
                (t, "batch", w * m, "ema's gradient scale")]
    return out


def original(profile, arch, seed, split, device):
    key = original_key(profile, arch, seed)
    if not P.has_checkpoint(key):
        raise FairgapError(f"the {profile.name} original of {arch} seed {seed} is not in the cache ({key}); "
                           "compute it first (python -m fairgap_utils compute --methods retrain ...)")
    return P._original_model(profile, arch, seed, key, split, None, device)[0]


@torch.no_grad()
def penalty_trace(model, split, hp, reference, layers, retained, seed):
    """Per-batch penalties of each (statistics, target) on the second of two passes, and the
    penalty of the pass's whole-data sigma, without training (a train-mode copy of `model`)."""
    import copy
    probe = copy.deepcopy(model).train()
    gen = torch.Generator(device=split.x_retain.device).manual_seed(seed)
    running = {t: K.RunningSigmas(reference, retained, hp["sigma_momentum"]) for t in K.TARGETS}
    values = {(s, t): [] for s in K.STATISTICS for t in K.TARGETS}
    num = max(retained) + 1
    sums = {n: torch.zeros(num, dtype=torch.float64) for n in layers}
    counts = torch.zeros(num, dtype=torch.float64)
    with K.class_sigma_hooks(probe, layers) as (sigmas, batch):
        for epoch in range(2):
            for x, y in D.batches(split.x_retain, split.y_retain, hp["batch_size"], shuffle=True,
                                  augment_images=True, generator=gen):
                classes = K.penalized_classes(y, retained)
                idx = torch.tensor(classes)
                batch.update(y=y, classes=idx)
                sigmas.clear()
                probe(x)
                for t in K.TARGETS:
                    ema = K.gap_penalty(running[t].mix(dict(sigmas), classes), retained, reference, t,
                                        hp["temperature"])
                    alone = K.gap_penalty(sigmas, classes, reference, t, hp["temperature"])
                    if epoch == 1:
                        values[("ema", t)].append(float(ema))
                        values[("batch", t)].append(float(alone))
                if epoch == 1:
                    images = (y[:, None] == idx[None, :]).sum(0).double()
                    for n in layers:
                        sums[n].index_add_(0, idx, sigmas[n].double() * images)
                    counts.index_add_(0, idx, images)
    whole = {n: (sums[n] / counts.clamp_min(1))[retained].float() for n in layers}
    truth = {t: float(K.gap_penalty(whole, retained, reference, t, hp["temperature"])) for t in K.TARGETS}
    return values, truth


def noise_part(profile, archs, seed, device, say):
    say("## Penalty noise against signal (no training; second pass over D_r)\n")
    say("| arch | model | target | whole-data penalty | statistics | mean per batch | rms error per batch | "
        "signal / noise |")
    say("|---|---|---|---|---|---|---|---|")
    for arch in archs:
        split = D.make_split(profile, seed, "class", device)
        orig = original(profile, arch, seed, split, device)
        hp = hyperparameters("keep_gap", profile.method_overrides.get("keep_gap", {}))
        layers = K.penalized_layers(orig, hp["layers"])
        retained = [c for c in range(split.num_classes) if c != split.forget_class]
        reference = K.reference_sigmas(orig, split, layers, retained, hp["batch_size"], seed + 3)
        seed_everything(seed)
        ctx = Context(original=orig, train_config=profile.train_config(arch), arch=arch, seed=seed)
        rl_model, _ = run_method("rl", orig, split, ctx, {k: hp[k] for k in RL.DEFAULTS})
        for name, model in (("original", orig), ("RL", rl_model)):
            values, truth = penalty_trace(model, split, hp, reference, layers, retained, seed + 11)
            for t in K.TARGETS:
                for s in ("batch", "ema"):
                    v = np.array(values[(s, t)])
                    rms = float(np.sqrt(np.mean((v - truth[t]) ** 2)))
                    say(f"| {arch} | {name} | {t} | {truth[t]:.5f} | {s} | {v.mean():.5f} | {rms:.5f} | "
                        f"{truth[t] / rms:.2f} |")
    say("")


def eps_summary(model, split, batch_size):
    layers = class_sigmas(model, split.x_test, split.y_test, split.num_classes, batch_size)
    sigma = np.array([L["sigma"]["channel"] for L in layers])          # (layers, classes)
    return sigma, sigma.max(1) - sigma.min(1)


def effect_part(profile, archs, seed, device, say, scratch):
    say("## Effect on the eval-mode fairness-gap (seed 0, class-wise; test images, channel sigma, all classes)\n")
    say("| arch | target | statistics | weight | dlog eps vs original | dlog eps vs RL | sigma_c distance to "
        "original | val acc (retained) | val acc - RL's | share of loss, epoch 1 | time s | weight from |")
    say("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for arch in archs:
        split = D.make_split(profile, seed, "class", device)
        orig = original(profile, arch, seed, split, device)
        keep = split.y_val != split.forget_class
        xv, yv = split.x_val[keep], split.y_val[keep]
        bs = profile.eval.batch_size
        sigma0, eps0 = eps_summary(orig, split, bs)
        retained = [c for c in range(split.num_classes) if c != split.forget_class]
        ctx = Context(original=orig, train_config=profile.train_config(arch), arch=arch, seed=seed)
        base = dict(profile.method_overrides.get("keep_gap", {}))

        def row(target, stats, weight, model, logs, seconds, rl_eps=None, rl_val=None, why=""):
            sigma, eps = eps_summary(model, split, bs)
            d_orig = 100 * float(np.mean(np.log(eps / eps0)))
            d_rl = float("nan") if rl_eps is None else 100 * float(np.mean(np.log(eps / rl_eps)))
            dist = 100 * float(np.mean(np.abs(np.log(sigma[:, retained] / sigma0[:, retained]))))
            val = accuracy(model, xv, yv, bs)
            share = logs.get("penalty_share_per_epoch", [float("nan")])[0]
            say(f"| {arch} | {target} | {stats} | {weight:g} | {d_orig:+.1f} | {d_rl:+.1f} | {dist:.1f} | {val:.2f} | "
                f"{float('nan') if rl_val is None else val - rl_val:+.2f} | {share:.3f} | {seconds:.0f} | {why} |")
            return eps, val

        seed_everything(seed)
        t = time.perf_counter()
        rl_model, rl_stats = run_method("rl", orig, split, ctx, {k: v for k, v in base.items() if k in RL.DEFAULTS})
        rl_eps, rl_val = row("-", "RL", 0, rl_model, {}, time.perf_counter() - t)
        for target, stats, w, why in effect_runs(profile, arch, seed, scratch):
            if w is None:
                say(f"| {arch} | {target} | {stats} | none within the margin ({why}) | | | | | | | |")
                continue
            seed_everything(seed)
            model, st = run_method("keep_gap", orig, split, ctx, dict(base, target=target, statistics=stats,
                                                                      weight=float(w)))
            row(target, stats, w, model, st["logs"], st["time_s"], rl_eps, rl_val, why)
    say("")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--archs", nargs="+")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--part", nargs="+", choices=("noise", "effect"), default=["noise", "effect"])
    ap.add_argument("--out", help="also write the tables to this markdown file")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scratch", default="/tmp/fairgap-keep-gap-statistics",
                    help="results folder of the batch statistics' calibration walk (not the repository's)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    archs = args.archs or list(profile.archs)
    lines = []

    def say(line=""):
        print(line, flush=True)
        lines.append(line)
        if args.out:
            Path(args.out).write_text("\n".join(lines) + "\n")
    say(f"# KeepGap statistics on the {profile.name} profile, seed {args.seed} "
        f"({time.strftime('%Y-%m-%d')}, torch {torch.__version__}, {torch.get_num_threads()} thread(s))\n")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if "noise" in args.part:
        noise_part(profile, archs, args.seed, device, say)
    if "effect" in args.part:
        effect_part(profile, archs, args.seed, device, say, Path(args.scratch))


if __name__ == "__main__":
    main()
