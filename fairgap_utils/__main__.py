"""Command line: `python -m fairgap_utils run|compute|book [--profile NAME] ...`.

- `run`: compute what is missing, execute the notebooks into book/, build the HTML.
- `compute`: only the compute stage (needs torch, torchvision, numpy, pillow, scikit-learn:
  what a bare GPU host has), writing small JSON results. `--budget-minutes N` stops cleanly
  before a unit that would not finish in N minutes (exit 0; rerun to resume); `--dry-run`
  prints what is missing and how long each piece would take here; the paper profile
  computes on a CPU only with `--allow-cpu`.
- `book`: only build the HTML from the executed notebooks already in book/.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import FairgapError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m fairgap_utils", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["run", "compute", "book"])
    ap.add_argument("--profile", help="smoke | cpu | paper (default: paper with CUDA, else cpu)")
    ap.add_argument("--arch", nargs="+", help="architectures (default: the profile's)")
    ap.add_argument("--seeds", nargs="+", type=int, help="seeds (default: the profile's)")
    ap.add_argument("--scenario", nargs="+", help="class and/or random (default: both)")
    ap.add_argument("--methods", nargs="+", help="unlearning methods (default: all)")
    ap.add_argument("--results", help="results folder (default: results/ or $FAIRGAP_RESULTS)")
    ap.add_argument("--data", help="local CIFAR-10 .npz or JPEG pack (default: $FAIRGAP_DATA, else download)")
    ap.add_argument("--out", help="book root to write into (default: the repository)")
    ap.add_argument("--budget-minutes", type=float, help="compute: start nothing that would not finish within this")
    ap.add_argument("--dry-run", action="store_true", help="compute: list the missing result files and time estimates")
    ap.add_argument("--allow-cpu", action="store_true", help="compute: compute the paper profile without CUDA (hours)")
    args = ap.parse_args(argv)
    try:
        from .config import get_profile
        profile = get_profile(args.profile)
        if args.command == "compute":
            from .pipeline import check_names, compute, estimate, estimate_table
            check_names(args.arch or (), args.methods or (), args.scenario or ())
            subset = dict(archs=args.arch, seeds=args.seeds, scenarios=args.scenario, methods=args.methods,
                          results=args.results)
            if args.dry_run:
                print(estimate_table(estimate(profile, **subset)))
                return 0
            done = compute(profile, **subset, data_path=args.data, budget_minutes=args.budget_minutes,
                           allow_cpu=args.allow_cpu)
            where = Path(done[0]).parents[3] if done else args.results or "results/"
            print(f"{done.summary} (under {where})")
        elif args.command == "run":
            if args.arch or args.seeds or args.scenario or args.methods:
                raise FairgapError("run takes the profile as a whole; use `compute` for a subset")
            from .book.runner import run
            run(profile.name, args.out, args.results, args.data)
        else:
            from .book.runner import build
            from .artifacts import REPO_ROOT
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
