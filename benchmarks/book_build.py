"""The book build's time at two commits, on the same result files: `run --profile cpu --no-compute` in fresh clones.

    python benchmarks/book_build.py                         # 19ebc99 (before issue 24) against HEAD, 3 pairs
    python benchmarks/book_build.py --before A --after B --pairs 2 --warmup 0 --results-at C

Each side is a fresh clone of this repository checked out at its commit, whose results/cpu is replaced by
the one of commit `--results-at` (default 95aabff: seeds 0-5 of both architectures, files whose keys both
default commits accept), so both sides read the same files and compute nothing. Each side first builds
`--warmup` times unrecorded (a fresh clone's first build also compiles its bytecode, and an older tutorial page
may cache what it trains), then the runs alternate (after, before, after, ...) so that a machine whose speed
drifts slows both sides alike. Per run: the wall time and the
CPU time (user + system) of the whole command and every process it waited for (the page kernels, jupyter-book),
and how many result files the run said it read; at the end the medians and their ratio after / before.
Everything runs with this interpreter (its packages), the images of $FAIRGAP_DATA and the checkpoints of
$FAIRGAP_CACHE (give the checkout's cache: the tutorial page of an older commit may train what is not cached).
Prints figures, asserts nothing; other work on the machine lengthens every figure (the load is printed before
and after).
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def clone(commit: str, results_at: str, where: Path) -> Path:
    """A fresh clone at `commit` whose results/cpu is the one of commit `results_at`."""
    subprocess.run(["git", "clone", "-q", "--no-checkout", str(REPO), str(where)], check=True)
    subprocess.run(["git", "-C", str(where), "checkout", "-q", commit], check=True)
    shutil.rmtree(where / "results" / "cpu", ignore_errors=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", results_at, "results/cpu"], capture_output=True,
                             check=True)   # as benchmarks/cpu.py's export_checkout, without a shell
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive.stdout, check=True)
    return where


def build(side: Path, log: Path) -> tuple[float, float, str]:
    """(wall s, CPU s of the command and its children, the run's count of result files) of one book build."""
    env = {**os.environ, "PYTHONPATH": str(side), "FAIRGAP_COMPUTE": "0", "FAIRGAP_PROGRESS": "0"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with open(log, "w") as out:
        rc = subprocess.run([sys.executable, "-m", "fairgap_utils", "run", "--profile", "cpu", "--no-compute"],
                            cwd=side, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if rc != 0:
        raise SystemExit(f"the build in {side} failed (exit {rc}); its output: {log}")
    held = re.search(r"holds (\d+ of its \d+) result files", log.read_text())
    return wall, cpu, held.group(1) if held else "?"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default="19ebc99", help="the baseline commit (default: before issue 24's work)")
    ap.add_argument("--after", default="HEAD", help="the commit measured against it (default: HEAD)")
    ap.add_argument("--results-at", default="95aabff", help="the commit whose results/cpu both sides read")
    ap.add_argument("--pairs", type=int, default=3, help="after/before pairs (default 3)")
    ap.add_argument("--warmup", type=int, default=1, help="unrecorded builds per side first (default 1)")
    a = ap.parse_args(argv)
    if a.pairs < 1:
        raise SystemExit(f"--pairs {a.pairs} must be 1 or more")
    if a.warmup < 0:
        raise SystemExit(f"--warmup {a.warmup} must be 0 or more")
    if not os.environ.get("FAIRGAP_DATA"):
        print("note: $FAIRGAP_DATA is not set; a page that reads images would download CIFAR-10", flush=True)
    commits = {s: subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", c], capture_output=True, text=True,
                                 check=True).stdout.strip() for s, c in (("after", a.after), ("before", a.before))}
    print(f"book build, after {commits['after']} against before {commits['before']}, results of {a.results_at}; "
          f"load before: {os.getloadavg()[0]:.2f}", flush=True)
    times: dict[str, list[tuple[float, float]]] = {"after": [], "before": []}
    with tempfile.TemporaryDirectory(prefix="fairgap-book-build-") as tmp:
        sides = {s: clone(commits[s], a.results_at, Path(tmp) / s) for s in ("after", "before")}
        for s in ("after", "before"):
            for i in range(a.warmup):
                wall, _, _ = build(sides[s], Path(tmp) / f"{s}-warmup{i}.log")
                print(f"warm-up {s:6} ({commits[s]}): wall {wall:6.1f} s, not counted", flush=True)
        for pair in range(1, a.pairs + 1):
            for s in ("after", "before"):
                wall, cpu, held = build(sides[s], Path(tmp) / f"{s}-{pair}.log")
                times[s].append((wall, cpu))
                print(f"pair {pair} {s:6} ({commits[s]}): wall {wall:6.1f} s, CPU {cpu:6.1f} s, read {held} files",
                      flush=True)
    med = {s: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for s, t in times.items()}
    for s in ("after", "before"):
        print(f"median {s:6}: wall {med[s][0]:.1f} s, CPU {med[s][1]:.1f} s")
    wall, cpu = (med["after"][i] / med["before"][i] for i in (0, 1))
    print(f"after / before: wall {wall:.2f}x, CPU {cpu:.2f}x; load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
