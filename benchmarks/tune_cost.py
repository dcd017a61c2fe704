"""Benchmark: what `python -m fairgap_utils tune` would cost for a profile, without running it.

    python benchmarks/tune_cost.py --profile cpu

The search runs every approximate method at each rate of `lr_grid` on one seed and measures
UA, RA, TA and MIA-efficacy. Its cost is estimated from parts measured separately:

1. each method's run time on that seed, from the profile's result files (a rate changes what a
   run does, not how long: the epochs and batches are the same);
2. one `unlearning_metrics` call per grid point, timed here on the profile's split for each
   architecture (with untrained weights: the cost does not depend on them);
3. the originals and Retrains of that seed (training + full measurement, from the result
   files): nothing when their checkpoints and results already exist;
4. the start of one job of the local launcher (interpreter, imports, loading the data), timed
   here in a fresh process, times the number of units.
Prints figures only; it asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("FAIRGAP_PROGRESS", "0")
from fairgap_utils.computing import artifacts as A  # noqa: E402
from fairgap_utils import data as D  # noqa: E402
from fairgap_utils.config import get_profile  # noqa: E402
from fairgap_utils.metrics import unlearning_metrics  # noqa: E402
from fairgap_utils.models import create_model  # noqa: E402
from fairgap_utils.computing.tune import tunable  # noqa: E402

JOB_START = """
import time; t = time.process_time()
import fairgap_utils.computing.pipeline, fairgap_utils.computing.launcher, submitit
from fairgap_utils import data
data.load_arrays("cifar10", {data!r})
print(time.process_time() - t)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--results", help="results folder (default: results/)")
    ap.add_argument("--data", default=os.environ.get("FAIRGAP_DATA"))
    args = ap.parse_args()
    p = get_profile(args.profile)
    seed, methods = p.seeds[0], tunable(p)
    root = A.results_dir(args.results) / p.name
    print(f"profile {p.name}: {len(p.archs)} archs x {len(p.scenarios)} scenarios x {len(methods)} methods "
          f"x {len(p.lr_grid)} rates = {len(p.archs) * len(p.scenarios) * len(methods) * len(p.lr_grid)} runs "
          f"on seed {seed}; torch threads {torch.get_num_threads()}")

    runs = base = 0.0
    for arch in p.archs:
        for scenario in p.scenarios:
            folder = root / arch / f"seed{seed}" / scenario
            times = {m: json.loads((folder / f"{m}.json").read_text())["stats"]["time_s"] for m in methods}
            runs += len(p.lr_grid) * sum(times.values())
            for label in ("original", "retrain"):
                r = json.loads((folder / f"{label}.json").read_text())
                base += ((r["stats"]["time_s"] if label == "retrain" or scenario == p.scenarios[0] else 0)
                         + r["eval_time_s"])
            print(f"  {arch:<12} {scenario:<6}: one run of each method {sum(times.values()):6.1f} s "
                  f"(slowest {max(times, key=times.get)} {max(times.values()):.1f} s)")

    metrics = 0.0
    for arch in p.archs:
        split = D.make_split(p, seed, p.scenarios[0], "cpu", args.data)
        model = create_model(arch, split.num_classes).eval()
        unlearning_metrics(model, split, p.eval.batch_size)                     # warm-up
        start = time.process_time()
        unlearning_metrics(model, split, p.eval.batch_size)
        per_point = time.process_time() - start
        metrics += per_point * len(p.scenarios) * len(methods) * len(p.lr_grid)
        print(f"  unlearning_metrics on {arch}: {per_point:.2f} CPU s per grid point")

    out = subprocess.run([sys.executable, "-c", JOB_START.format(data=args.data)], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])), check=True)
    job_start = float(out.stdout.strip().splitlines()[-1])
    units = len(p.archs) * (1 + len(p.scenarios) * (1 + len(methods))) + 1
    print(f"  start of one local job: {job_start:.1f} CPU s; {units} units")

    cores = 2
    print(f"wall minutes on a {cores}-core machine (stored run times are wall times of the run that made the results; "
          f"measured CPU seconds here are divided by {cores}, as --launcher local --jobs {cores} runs them):")
    print(f"  grid runs (method times x {len(p.lr_grid)} rates):     {runs / 60:6.1f} min")
    print(f"  their measurement (UA/RA/TA/MIA):        {metrics / cores / 60:6.1f} min")
    print(f"  = the search itself:                     {(runs + metrics / cores) / 60:6.1f} min")
    print(f"  + originals and Retrains of seed {seed}, if absent: {base / 60:6.1f} min")
    print(f"  + job starts (local launcher only):       {units * job_start / cores / 60:6.1f} min")

if __name__ == "__main__":
    main()
