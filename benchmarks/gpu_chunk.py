"""One GPU session in one command: a self-check, then paper-profile chunks until the time is up.

    OUT=/tmp/out bash benchmarks/gpu_chunk.sh 9       # what a GPU session runs (README: "Paper-scale results on a GPU")
    python3 benchmarks/gpu_chunk.py --minutes 9 --out DIR [--chunks resnet50:class:0 ...]

1. The machine: torch, CUDA device, versions.
2. Self-check (under a minute on an H200): the smoke profile's class-wise scenario with every
   method on this device, into a scratch folder, every number checked for range; then
   training throughput of `fit` against a plain loop for resnet18, resnet50 and vit_small
   (benchmarks/throughput.py). A failure stops the command here (exit 1).
3. Chunks of the paper profile in the issues' priority order (ORDER, or --chunks), each one
   `pipeline.compute(..., budget_minutes=<time left>)`: it never starts a model it cannot
   finish and keeps every finished result file. A chunk whose estimate does not fit the time
   left but would fit a fresh session is deferred (its original would be trained twice:
   checkpoints do not come back from the GPU machine); one that fits no session is computed
   as far as the time allows, and the next session resumes it.
4. Into DIR: results-<profile>.tar.gz (results/<profile>/ as a path from the repository root;
   unpack it there) and summary.txt (one line per chunk: status, files, wall time).

A chunk is `arch:scenario:seed`, the (architecture, scenario, seed) slice without the Retrain
replicates, or `arch:scenario:seed:replicates`, the replicates of the noise floor.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import sys
import tarfile
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("FAIRGAP_PROGRESS", "0")

import torch  # noqa: E402

from fairgap_utils.computing import artifacts as A  # noqa: E402
from fairgap_utils.computing import pipeline as P  # noqa: E402
from fairgap_utils.computing import stage as S  # noqa: E402
from fairgap_utils.config import get_profile  # noqa: E402
from fairgap_utils.errors import FairgapError, check_choice  # noqa: E402
from fairgap_utils.computing.estimate import Estimator  # noqa: E402
from fairgap_utils.models import MODELS  # noqa: E402

# issue 7: (a) ResNet-50 class-wise, (b) SmallViT class-wise, (c) ResNet-50 random 10%,
# (d) SmallViT random 10%, (e) ResNet-18 random 10%, (f) more seeds; issue 8: then seeds 1 and 2
# of (a) and (b), then the rest. The Retrain replicates (noise floor of the verdicts) follow
# the chunks they belong to, after (a) and (b) and after (c)-(e).
ORDER = ("resnet50:class:0", "vit_small:class:0",
         "resnet50:class:0:replicates", "vit_small:class:0:replicates",
         "resnet50:random:0", "vit_small:random:0", "resnet18:random:0",
         "resnet50:random:0:replicates", "vit_small:random:0:replicates", "resnet18:random:0:replicates",
         "resnet50:class:1", "resnet50:class:2", "vit_small:class:1", "vit_small:class:2",
         "resnet18:class:0", "resnet18:class:0:replicates",
         "resnet50:random:1", "resnet50:random:2", "vit_small:random:1", "vit_small:random:2",
         "resnet18:random:1", "resnet18:random:2", "resnet18:class:1", "resnet18:class:2")
RESERVE_S = 15  # kept free at the end: packing the results, the summary, the process exit


def say(msg: str) -> None:
    print(msg, flush=True)


def parse_chunk(spec: str) -> tuple:
    parts = spec.split(":")
    if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "replicates") or not parts[2].isdigit():
        raise FairgapError(f"chunk {spec!r} is not arch:scenario:seed or arch:scenario:seed:replicates "
                           "(e.g. resnet50:class:0)")
    check_choice("architecture", parts[0], MODELS)
    check_choice("forget scenario", parts[1], ("class", "random"))
    return parts[0], parts[1], int(parts[2]), len(parts) == 4


def environment(device: torch.device) -> None:
    import numpy
    import sklearn
    import tqdm
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else "none (CPU run)"
    say(f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), numpy "
        f"{numpy.__version__}, scikit-learn {sklearn.__version__} ({Path(sklearn.__file__).parent.parent}), tqdm "
        f"{tqdm.__version__}; GPU: {gpu}; "
        f"{os.cpu_count()} CPUs; {platform.platform()}")


def record_problems(paths) -> list[str]:
    """Every number of the smoke records that is out of range or not finite."""
    bad = []
    for f in paths:
        r = json.loads(Path(f).read_text())
        values = [("metrics", k, r["metrics"][k]) for k in ("UA", "RA", "TA", "MIA")]
        values += [(a, eps, v) for a in ("fgsm", "pgd") for eps, v in r["attacks"][a].items()]
        bad += [f"{Path(f).stem} {g} {k}={v}" for g, k, v in values
                if not isinstance(v, (int, float)) or not 0 <= v <= 100]
        sigmas = [s for L in r["fairness"] for s in L["sigma"]["channel"] if s is not None]
        if not sigmas or not all(math.isfinite(s) and s >= 0 for s in sigmas):
            bad.append(f"{Path(f).stem} sigma")
    return bad


def selfcheck(args, device, scratch: Path) -> bool:
    start = time.perf_counter()
    try:
        done = S.compute(get_profile("smoke"), archs=args.selfcheck_archs, scenarios=["class"],
                         methods=args.selfcheck_methods, results=scratch / "results", cache=scratch / "cache",
                         data_path=args.data, device=device, log=lambda line: None)
        problems = record_problems(done)
    except Exception:
        traceback.print_exc()
        say("SELF-CHECK FAILED: the smoke profile did not run on this device")
        return False
    say(f"self-check: smoke profile, {', '.join(args.selfcheck_archs)}, class-wise, {len(done)} models on "
        f"{device.type}: {time.perf_counter() - start:.1f} s, " + ("numbers in range" if not problems else
                                                                  f"OUT OF RANGE: {problems}"))
    if problems:
        return False
    spec = importlib.util.spec_from_file_location("throughput", REPO / "benchmarks" / "throughput.py")
    tp = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tp)
    say(f"training throughput (images/s) at batch {args.throughput_batch}: fairgap fit (augmentation, bf16 "
        "autocast and channels_last on CUDA) vs a plain eager float32 loop")
    try:
        for arch in args.throughput_archs:
            ours = tp.fit_throughput(arch, args.throughput_batch, args.throughput_steps, device)
            plain = tp.eager_throughput(arch, args.throughput_batch, args.throughput_steps, device)
            say(f"  {arch:10s} fit {ours:9.0f}   eager {plain:9.0f}   ratio {ours / plain:4.2f}")
    except Exception:
        traceback.print_exc()
        say("SELF-CHECK FAILED: the throughput benchmark did not run")
        return False
    say(f"self-check done in {time.perf_counter() - start:.1f} s")
    return True


def run_chunks(args, device, deadline: float) -> list[str]:
    """Compute the chunks in order; after each, the results and the summary so far are written to --out
    (so a command killed at its time limit still returns every finished result file)."""
    profile = get_profile(args.profile)
    est = Estimator(profile, device)
    session_s = deadline - time.monotonic()        # what a fresh session of this length gives the chunks
    lines = []
    for spec in args.chunks:
        arch, scenario, seed, replicates = parse_chunk(spec)
        # the slice without the replicates, or Retrain with its replicates (the noise floor)
        p = profile if replicates else profile.replace(retrain_replicates=0)
        subset = dict(archs=[arch], seeds=[seed], scenarios=[scenario], methods=["retrain"] if replicates else None)
        units = P.plan(p, **subset, results=args.results)
        missing = [u for u in units if not u.present]
        if replicates and not any(u.label.startswith("retrain-r") for u in units):
            lines.append(f"{spec:32s} {'nothing to do':24s} seed {seed} has no replicates")
            continue
        if not missing:
            lines.append(f"{spec:32s} {'complete':24s} {len(units)} files")
            continue
        left_s = deadline - time.monotonic()
        rows = P.estimate_units(p, units, device, args.cache, estimator=est)
        need_s = sum(sum(stages.values()) for _, stages in rows) * est.margin
        say(f"== {spec}: {len(missing)} of {len(units)} result files missing, estimated {need_s:.0f} s, "
            f"{left_s:.0f} s left")
        if need_s > left_s and need_s <= session_s:
            lines.append(f"{spec:32s} {'deferred (fits a session)':24s} {len(missing)} missing, about {need_s:.0f} s")
            say(f"   deferred to the next session: it fits a whole session but not the {left_s:.0f} s left")
            continue
        if left_s <= 0:
            lines.append(f"{spec:32s} {'not started (no time)':24s} {len(missing)} missing")
            continue
        start = time.monotonic()
        try:
            done = S.compute(p, **subset, results=args.results, cache=args.cache, data_path=args.data,
                             device=device, budget_minutes=left_s / 60, estimator=est)
        except Exception as e:          # keep what finished; a crash would repeat in the next chunk
            traceback.print_exc()
            lines.append(f"{spec:32s} {'FAILED':24s} {type(e).__name__}: {e}"[:300])
            break
        status = "complete" if done.complete else "stopped for the budget" if done.stopped_for_budget else "incomplete"
        lines.append(f"{spec:32s} {status:24s} {len(done.written)} written, {len(done.left)} left, "
                     f"{time.monotonic() - start:.0f} s")
        say(f"   {status}: {len(done.written)} written, {len(done.left)} left in {time.monotonic() - start:.0f} s")
        save(args, lines)
    ratios = ", ".join(f"{a} {k} {s[0] / s[1]:.2f}" for (a, k), s in est.seen.items() if s[1] > 0)
    lines.append(f"measured / estimated time so far: {ratios or 'nothing measured'}")
    return lines


def pack(results_root: Path, profile: str, out: Path) -> Path | None:
    """results/<profile>/ as <out>/results-<profile>.tar.gz (written aside, then renamed into place)."""
    folder = results_root / profile
    if not folder.is_dir():
        return None
    target = out / f"results-{profile}.tar.gz"
    partial = out / f".results-{profile}.tar.gz.partial"
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(folder, arcname=f"results/{profile}")
    partial.replace(target)
    return target


def save(args, lines: list[str]) -> str:
    """Pack the results and write summary.txt; returns the summary."""
    archive = pack(args.results, args.profile, args.out)
    summary = "\n".join(lines + [f"results: {archive.name if archive else 'none'} in {args.out}"])
    (args.out / "summary.txt").write_text(summary + "\n")
    return summary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, required=True, help="wall time of the whole command")
    ap.add_argument("--started", type=float, help="when the command started (epoch s; default: now)")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or tempfile.mkdtemp(prefix="gpu_chunk.")))
    ap.add_argument("--profile", default="paper", help="profile of the chunks (smoke: a CPU rehearsal)")
    ap.add_argument("--chunks", nargs="+", default=list(ORDER), help="arch:scenario:seed[:replicates], in order")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--data", default=str(REPO / "shared_data") if (REPO / "shared_data").is_dir() else None,
                    help="CIFAR-10 copy: a folder holding cifar10-jpeg.npz (default: shared_data/)")
    ap.add_argument("--results", type=Path, default=A.results_dir())
    ap.add_argument("--cache", type=Path, default=A.cache_dir())
    ap.add_argument("--no-selfcheck", action="store_true")
    ap.add_argument("--selfcheck-archs", nargs="+", default=["resnet_tiny", "vit_micro"])
    ap.add_argument("--selfcheck-methods", nargs="+", default=None, help="default: every method")
    ap.add_argument("--throughput-archs", nargs="+", default=["resnet18", "resnet50", "vit_small"])
    ap.add_argument("--throughput-batch", type=int, default=512)
    ap.add_argument("--throughput-steps", type=int, default=10)
    args = ap.parse_args(argv)
    deadline = (args.started or time.time()) + 60 * args.minutes - RESERVE_S
    deadline = time.monotonic() + (deadline - time.time())          # the same instant on the monotonic clock
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        get_profile(args.profile)
        for spec in args.chunks:
            parse_chunk(spec)
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise FairgapError("no CUDA device here; a CPU rehearsal takes --device cpu --profile smoke")
    except FairgapError as e:
        say(f"error: {e}")
        return 2
    environment(device)
    if not args.no_selfcheck:
        with tempfile.TemporaryDirectory(prefix="selfcheck.") as scratch:
            if not selfcheck(args, device, Path(scratch)):
                return 1
    lines = run_chunks(args, device, deadline)
    say("== summary\n" + save(args, lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
