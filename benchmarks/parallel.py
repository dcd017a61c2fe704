"""Every core, no double work: wall times of `compute` with its default processes, against one process.

    python benchmarks/parallel.py                  # about 4 minutes on 2 idle cores; prints figures, asserts nothing
    python benchmarks/parallel.py --parts a        # only the probe (and the one run alone it is measured against)

Each run is the command line a user types, on fresh temporary results and cache folders, with
the images from ../shared/data/cifar10/cifar10-jpeg.npz (or $FAIRGAP_DATA):

(a) the probe of issue 21: two `compute --profile smoke` started 3 s apart on one results and
    cache folder, against one alone (its wall, the default processes);
(b) the whole smoke profile with the default processes, against `--jobs 1` (one process, every
    thread, as `compute` ran before);
(c) `compute --profile cpu --dry-run` on an empty results folder (the whole profile): the default
    processes' estimate beside one process's.

Every run's own summary line says how many result files it wrote, so (a) also shows whether the
two runs shared the work (together they write each of the 56 files once). The machine's load
(`uptime`) is printed before and after: other work on the machine lengthens every figure.
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "cifar10" / "cifar10-jpeg.npz"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def start(folder: Path, *args: str) -> subprocess.Popen:
    """`python -m fairgap_utils compute ARGS` on `folder`'s results and cache, its output collected."""
    env = dict(os.environ, FAIRGAP_RESULTS=str(folder / "results"), FAIRGAP_CACHE=str(folder / "cache"),
               FAIRGAP_PROGRESS="0", FAIRGAP_DATA=os.environ.get("FAIRGAP_DATA") or str(DATA))
    return subprocess.Popen([sys.executable, "-m", "fairgap_utils", "compute", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, began: float) -> tuple[float, str]:
    out = proc.communicate()[0]
    if proc.returncode != 0:
        sys.exit(f"compute failed (exit {proc.returncode}):\n{out[-3000:]}")
    return time.perf_counter() - began, out


def summary(out: str) -> str:
    """The run's own last line: `complete: all 56 result files present (28 result files written in 40 s) ...`."""
    return out.strip().splitlines()[-1]


def written(out: str) -> int:
    m = re.search(r"\((\d+) result files written", summary(out))
    return int(m.group(1)) if m else -1


def timed(scratch: Path, name: str, *args: str) -> tuple[float, str]:
    folder = scratch / name
    began = time.perf_counter()
    return finish(start(folder, *args), began)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gap", type=float, default=3.0, help="seconds between the probe's two starts (default 3)")
    ap.add_argument("--parts", default="abc", help="which of (a), (b), (c) to measure (default: abc)")
    args = ap.parse_args()
    if not args.parts or set(args.parts) - set("abc"):
        sys.exit(f"--parts {args.parts!r}: give letters among a, b and c, e.g. --parts ab")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {platform.processor() or platform.machine()}, {cores} cores; "
          f"load before: {load()}", flush=True)
    report = []
    with tempfile.TemporaryDirectory(prefix="fairgap-parallel-") as tmp:
        scratch = Path(tmp)
        if "a" in args.parts or "b" in args.parts:
            alone, out = timed(scratch, "alone", "--profile", "smoke")
            print(f"smoke, default processes, alone: {alone:.1f} s; {summary(out)}", flush=True)
        if "b" in args.parts:
            one, out1 = timed(scratch, "one-process", "--profile", "smoke", "--jobs", "1")
            print(f"smoke, --jobs 1:                 {one:.1f} s; {summary(out1)}", flush=True)
            report += ["(b) the whole smoke profile",
                       f"    default processes {alone:.1f} s, --jobs 1 {one:.1f} s: {one / alone:.2f}x faster"]
        if "a" in args.parts:
            probe = scratch / "probe"
            began = time.perf_counter()
            first = start(probe, "--profile", "smoke")
            time.sleep(args.gap)
            second_began = time.perf_counter()
            second = start(probe, "--profile", "smoke")
            wall_first, out_first = finish(first, began)
            wall_second, out_second = finish(second, second_began)
            span = time.perf_counter() - began
            said = next((line for line in out_second.splitlines() if "running on this results folder" in line), None)
            report[:0] = [
                f"(a) two smoke computes on one folder, started {args.gap:.0f} s apart",
                f"    first  {wall_first:6.1f} s, wrote {written(out_first)} result files",
                f"    second {wall_second:6.1f} s, wrote {written(out_second)} result files"
                + (f"; it said: {said.split(': sharing')[0]}" if said else "; it found no other run"),
                f"    each run at most {max(wall_first, wall_second) / alone:.2f}x one run alone ({alone:.1f} s); "
                f"from the first start to the last end {span:.1f} s, {span / alone:.2f}x"]
        if "c" in args.parts:
            report.append("(c) compute --profile cpu --dry-run, the whole profile")
            for label, extra in (("default", ()), ("--jobs 1", ("--jobs", "1"))):
                _, text = timed(scratch, "dry-run", "--profile", "cpu", "--dry-run", *extra)
                report += [f"    {label:9s} {line}" for line in text.strip().splitlines()[-3:]
                           if line.startswith("total:") or " x " in line]
    print()
    print("\n".join(report))
    print(f"load after: {load()}")


if __name__ == "__main__":
    main()
