"""How far the time estimates (`estimate.Estimator`) are from the times the committed results record.

    taskset -c 0 python benchmarks/estimate_accuracy.py --profile cpu      # one thread, as cpu was computed

Measures the rates on this machine (what `compute --dry-run` does), then sets each stage's
uncorrected estimate beside the time its result file records: the training or unlearning run
(`stats.time_s`) and the measurement (`eval_time_s`). Meaningful where the results were computed
on this kind of machine with the same thread count (`--threads`; the cpu profile: one per process).
Prints the estimate/actual ratio per architecture and stage kind, and overall; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("FAIRGAP_PROGRESS", "0")

from fairgap_utils.computing import pipeline as P                    # noqa: E402
from fairgap_utils.config import get_profile               # noqa: E402
from fairgap_utils.computing.estimate import Estimator               # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    start = time.perf_counter()
    est = Estimator(profile, "cuda" if torch.cuda.is_available() else "cpu")
    ratios, total = defaultdict(list), [0.0, 0.0]
    for unit in P.plan(profile):
        if not unit.present:
            continue
        record = json.loads(Path(unit.path).read_text())
        stages = est.raw(unit, train_original=unit.label == "original")
        kind = "original" if unit.label == "original" else "retrain" if unit.method == "retrain" else "method"
        pairs = [("measure", stages["measure"], record.get("eval_time_s"))]
        pairs += [(kind, v, record["stats"].get("time_s")) for k, v in stages.items() if k != "measure"]
        for what, estimated, actual in pairs:
            if actual:
                ratios[(unit.arch, what)].append(estimated / actual)
                total[0] += estimated
                total[1] += actual
    if not ratios:
        sys.exit(f"no committed result files of profile {args.profile!r} to compare with")
    print(f"profile {args.profile}, {args.threads} thread(s); rates measured in {time.perf_counter() - start:.1f} s")
    for (arch, what), r in sorted(ratios.items()):
        print(f"{arch:14s} {what:9s} estimate/actual median {statistics.median(r):.2f} "
              f"(range {min(r):.2f}-{max(r):.2f}, {len(r)} stages)")
    print(f"all stages: estimated {total[0] / 60:.0f} min, recorded {total[1] / 60:.0f} min, "
          f"ratio {total[0] / total[1]:.2f} (an original counts once per result file that records it)")


if __name__ == "__main__":
    main()
