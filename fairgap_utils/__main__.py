"""Command line: `python -m fairgap_utils run|compute|tune|book [--profile NAME] ...`.

- `run`: compute what is missing, execute the notebooks into book/, build the HTML. With no
  `--profile`: paper when results/paper holds result files, else paper with CUDA, else cpu; the
  paper profile on a machine without CUDA is rebuilt from its result files, computing nothing;
  `--no-compute` never computes.
- `compute`: only the compute stage (needs torch, torchvision, numpy, pillow, scikit-learn:
  what a bare GPU host has), writing small JSON results. On a CPU it runs one single-threaded
  process per core (at most one per architecture-seed pair), each taking whole pairs, the
  heaviest first; `--jobs N` sets the number of processes (`--jobs 1`: this process, every
  thread; the default with CUDA). Two computes on one results folder share the work.
  `--budget-minutes N` stops cleanly before a unit that would not finish in N minutes (exit 0;
  rerun to resume); `--dry-run` prints what is missing and how long each piece would take
  here, with N processes and with one; the paper profile computes on a CPU only with
  `--allow-cpu`. `--launcher local` runs its units as `--jobs` submitit processes,
  `--launcher slurm` submits them as SLURM jobs (fairgap_utils/computing/launcher.py says what each
  job computes).
- `tune`: the learning-rate search of each approximate method (fairgap_utils/computing/tune.py), through
  the same launchers; a profile with `tuned_lr=True` then uses the chosen rates.
- `book`: only build the HTML from the executed notebooks already in book/.
- `plan`: write results/<profile>/plan.json, the plan the book reads without torch (every result
  file the profile needs, with its key); `compute` and `run` write it too.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import get_profile
from .errors import FairgapError
from .files import REPO_ROOT


def main(argv=None) -> int:
    # lazy: each command imports only its own side (computing and torch, or the book's notebook stack)
    from .computing.launcher import add_options, main_options
    ap = argparse.ArgumentParser(prog="python -m fairgap_utils", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "compute", "tune", "book", "plan"])
    ap.add_argument("--profile", help="smoke | cpu | paper (default: paper with CUDA, else cpu; run: paper also "
                                      "when results/paper holds results)")
    ap.add_argument("--arch", nargs="+", help="architectures (default: the profile's)")
    ap.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the profile's; tune: its first)")
    ap.add_argument("--scenario", nargs="+", help="class and/or random (default: both)")
    ap.add_argument("--methods", nargs="+", help="unlearning methods (default: all)")
    ap.add_argument("--results", help="results folder (default: results/ or $FAIRGAP_RESULTS)")
    ap.add_argument("--cache", help="checkpoints folder (default: cache/ or $FAIRGAP_CACHE)")
    ap.add_argument("--data", help="local CIFAR-10 .npz or JPEG pack (default: $FAIRGAP_DATA, else download)")
    ap.add_argument("--out", help="book root to write into (default: the repository)")
    ap.add_argument("--budget-minutes", type=float, help="compute: start nothing that would not finish within this")
    ap.add_argument("--dry-run", action="store_true", help="compute: list the missing result files and time estimates")
    ap.add_argument("--allow-cpu", action="store_true", help="compute: compute the paper profile without CUDA (hours)")
    ap.add_argument("--no-compute", action="store_true", help="run: build the book from the result files present")
    add_options(ap)
    args = ap.parse_args(argv)
    try:
        profile = get_profile(args.profile)
        if args.command in ("compute", "tune"):
            from .registries import check_names  # lazy: as above
            check_names(args.arch or (), args.methods or (), args.scenario or ())
            launcher = main_options(args)
        if args.command == "compute" and (launcher.kind == "inline" or args.dry_run):
            from .computing.stage import compute, dry_run  # lazy: as above
            subset = dict(archs=args.arch, seeds=args.seeds, scenarios=args.scenario, methods=args.methods,
                          results=args.results)
            if args.dry_run:
                print(dry_run(profile, args.jobs, cache=args.cache, **subset))
                return 0
            done = compute(profile, **subset, cache=args.cache, data_path=args.data,
                           budget_minutes=args.budget_minutes, allow_cpu=args.allow_cpu, jobs=args.jobs)
            where = Path(done[0]).parents[3] if done else args.results or "results/"
            print(f"{done.summary} (under {where})")
        elif args.command == "compute":
            from .computing.launcher import submit  # lazy: as above
            report = submit(profile, args.arch, args.seeds, args.scenario, args.methods, args.results, args.cache,
                             args.data, launcher)
            print(report.summary())
            return 0 if report.ok else 1
        elif args.command == "tune":
            from .computing.tune import tune  # lazy: as above
            if args.seeds and len(args.seeds) != 1:
                raise FairgapError(f"tune runs on one seed; got --seeds {' '.join(map(str, args.seeds))}")
            report = tune(profile, args.arch, args.seeds[0] if args.seeds else None, args.scenario, args.methods,
                          args.results, args.cache, args.data, launcher)
            print(report.summary())
            return 0 if report.ok else 1
        elif args.command == "plan":
            from .computing.pipeline import write_manifest  # lazy: as above
            print(write_manifest(profile, args.results))      # the planner checks the profile's names
        elif args.command == "run":
            if args.arch or args.seeds or args.scenario or args.methods:
                raise FairgapError("run takes the profile as a whole; use `compute` for a subset")
            from .book.runner import run  # lazy: as above
            if args.jobs is not None:
                main_options(args)                       # a bad --jobs: one line, before any work
            run(args.profile, args.out, args.results, args.data, compute_missing=False if args.no_compute else None,
                jobs=args.jobs)
        else:
            from .book.runner import build  # lazy: as above
            print(build(Path(args.out or REPO_ROOT)) / "index.html")
    except FairgapError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished results are kept; rerun to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
