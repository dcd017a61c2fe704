"""The compute stage as a whole: every result file of a profile, computed (or reused) here or in one process
per core, under a budget.

    compute(get_profile("cpu"))                        # everything the book needs, resumable
    compute(get_profile("paper"), budget_minutes=8)    # as much as fits in 8 minutes, then stop cleanly
    dry_run(get_profile("cpu"))                        # what is missing and how long it would take here

What a profile needs and how one unit is computed are `pipeline`'s (`plan`, `_Computer`); how the
processes share the work is `workers`'; this module decides how many processes, starts them (or
computes in this one), and says what was done and what is left (`Computed`).
"""
from __future__ import annotations

import contextlib
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby

import torch

from ..config import PROFILES, Profile
from ..errors import FairgapError, check_range
from ..unlearn import METHODS
from . import artifacts as A
from . import pipeline as P
from . import workers
from .estimate import Estimator
from .pipeline import (GPU_PROFILES, Unit, _chunk_of, _Computer, _fast_cuda, _weights, _with_training, duration,
                       estimate_table, makespan, missing_chunks, plan, select, write_manifest)


class Computed(list):
    """What `compute` returns: the paths of every requested result file that exists, in plan order.

    A list of paths, plus: `units` (the plan), `left` (the units still missing), `written` (the units written
    by this call), `stopped_for_budget` (True when the budget stopped it), `elapsed_s`, and
    `summary` (one line: what was done and what is left).
    """

    def __init__(self, units, paths, left, written, stopped_for_budget, elapsed_s, budget_s=None):
        super().__init__(paths)
        self.units, self.left, self.written = units, left, written
        self.stopped_for_budget, self.elapsed_s, self.budget_s = stopped_for_budget, elapsed_s, budget_s

    @property
    def complete(self) -> bool:
        return not self.left

    @property
    def summary(self) -> str:
        done = f"{len(self.written)} result files written in {duration(self.elapsed_s)}"
        if self.complete:
            return f"complete: all {len(self)} result files present ({done})"
        why = (f"stopped for the budget of {self.budget_s / 60:.1f} min: " if self.stopped_for_budget else "")
        return (f"{why}{done}; {len(self)} present, {len(self.left)} left: {missing_chunks(self.units, self.left)}; "
                f"rerun to resume")


def _print(message: str) -> None:
    print(message, flush=True)


RUN_CLAIMS = ".compute-*.lock"   # in <results>/<profile>/: one per running compute, naming its processes


def cores() -> int:
    """The CPU cores this process may run on (its affinity mask: taskset, SLURM, a container's cpuset)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _count(value) -> int:
    return value if isinstance(value, int) and value > 0 else 1


def _check_count(what: str, value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise FairgapError(f"{what} {value!r} is out of range; it must be a whole number, 1 or more")


def _other_runs(results, profile_name: str) -> tuple[list[dict], int]:
    """The other computes running on this profile's results folder (their run claims), and the cores those
    on this host use (processes x threads)."""
    others = A.live_claims(A.results_dir(results) / profile_name, RUN_CLAIMS)
    here = socket.gethostname()
    return others, sum(_count(o.get("processes")) * _count(o.get("threads")) for o in others if o.get("host") == here)


def _processes(missing: list[Unit], device, jobs, threads, busy: int, local: bool) -> tuple[int, int | None]:
    """(processes, torch threads per process; None: this process keeps its own setting).

    `jobs` None: one process on CUDA or where something lives in this process only (`local`: a
    registered method, a caller's estimator); else one per free core (the cores less the `busy` ones
    other runs here use), at most one per (arch, seed) chunk with missing files. Threads: the free
    cores shared out, at least one each.
    """
    free = max(1, cores() - busy)
    if jobs is None:
        n = 1 if device.type == "cuda" or local else min(free, len({_chunk_of(u) for u in missing}))
    else:
        n = max(1, min(jobs, len(missing)))
    if threads is None and (n > 1 or busy):
        threads = max(1, free // n)
    return n, threads


@contextlib.contextmanager
def _torch_threads(n: int | None):
    """torch's intra-op threads set to `n` (None: unchanged) for the block, then restored."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def dry_run(profile: Profile, jobs: int | None = None, device=None, cache=None, **subset) -> str:
    """What `compute --dry-run` prints: the estimate of every missing unit with the threads each process
    would have, and with more than one process the whole as `compute` shares it among them (`makespan`),
    beside the same work in one process with every thread (`--jobs 1`). `subset`: plan's arguments."""
    _check_count("jobs (processes at once)", jobs)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    units = plan(profile, **subset)
    missing = [u for u in units if not u.present]
    local = any(METHODS[m].registered for m in select(profile, *(subset.get(k) for k in (
        "archs", "seeds", "scenarios", "methods"))).methods)
    _, busy = _other_runs(subset.get("results"), profile.name)
    n, threads = _processes(missing, device, jobs, None, busy, local) if missing else (1, None)
    flagged = _with_training(units, cache)
    with _torch_threads(threads):
        est = Estimator(profile, device)
        rows = [(u, est.stages(u, o, r)) for u, o, r in flagged]
    if n == 1:
        return estimate_table(rows)
    with _torch_threads(cores()):
        est = Estimator(profile, device)
        alone = sum(sum(est.stages(u, o, r).values()) for u, o, r in flagged)
    span = makespan(rows, n, _weights(profile, flagged))
    plural = "s" if threads > 1 else ""
    return "\n".join([
        estimate_table(rows, f"at {threads} thread{plural} per process, one after the other"),
        f"{n} processes x {threads} thread{plural}: about {duration(span)} (whole architecture-seed chunks, heaviest "
        f"first; a process with none left helps with another's unstarted units; start-up not counted)",
        f"1 process x {cores()} threads (--jobs 1): about {duration(alone)}"])


def compute(profile: Profile, archs=None, seeds=None, scenarios=None, methods=None, results=None,
            cache=None, data_path=None, device=None, budget_minutes: float | None = None,
            allow_cpu: bool = False, log=None, estimator=None, overlap_svm: bool | None = None,
            jobs: int | None = None, threads: int | None = None) -> Computed:
    """Compute (or reuse) every result of `profile` or of the subset; returns the result files present.

    budget_minutes: never start a unit (a model and its measurement, with the original's
      training when it is not cached) that the estimates say cannot finish within this
      many minutes of the call; stop cleanly instead (`Computed.stopped_for_budget`).
    allow_cpu: compute a GPU profile (`GPU_PROFILES`: paper) without CUDA; otherwise that
      is refused with the list of missing chunks, before any work.
    log: called with one line per result file written (default: print).
    estimator: an `estimate.Estimator` to use (and to keep its corrections across calls); it
      lives in this process, so the work stays here (jobs 1).
    overlap_svm: run each model's MIA SVM on a CPU thread while the next model trains, writing
      its result file when the SVM is done (default: on CUDA; the numbers are the same).
    jobs: processes at once. Default: on a CPU one per free core, at most one per (arch, seed)
      chunk with missing files; on CUDA one. Each is a fresh (spawned) process that takes whole
      chunks, heaviest first; one with no chunk left helps with the unstarted units of another's.
      1: everything in this process (the tests and the GPU path).
    threads: torch threads per process (default: the free cores shared out; with one process and
      no other run here, this process's own setting).

    Two runs on one results folder (a rerun while the first still runs, two SLURM jobs) share the
    work: each result file is claimed before it is computed (`artifacts.claim`), a file another
    process has claimed is skipped and waited for at the end (computed here if its claim disappears
    without it), and a run that finds another computing in the folder says so in one line and
    leaves it the cores it uses.
    """
    start = P._clock()
    whole = all(x is None for x in (archs, seeds, scenarios, methods)) and PROFILES.get(profile.name) == profile
    profile = select(profile, archs, seeds, scenarios, methods)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if budget_minutes is not None:
        check_range("budget_minutes", budget_minutes, 0, 10 ** 6)
    _check_count("jobs (processes at once)", jobs)
    _check_count("threads per process", threads)
    local = [m for m in profile.methods if METHODS[m].registered]
    if jobs is not None and jobs > 1 and (local or estimator is not None):
        what = f"the method {local[0]!r} was registered in this process" if local else "the estimator is this process's"
        raise FairgapError(f"jobs={jobs}: {what}, and new processes cannot see it; use jobs=1")
    units = plan(profile, results=results)
    if whole:                                    # a named profile as a whole: the plan the book reads
        write_manifest(profile, results)
    missing = [u for u in units if not u.present]
    if missing and device.type != "cuda" and profile.name in GPU_PROFILES and not allow_cpu:
        raise FairgapError(
            f"the {profile.name} profile is computed on a GPU (hours on a CPU) and this machine has no CUDA; "
            f"missing: {missing_chunks(missing)}. Compute them on a GPU (README, 'Paper-scale results on a GPU'), "
            "or pass --allow-cpu (allow_cpu=True) to compute them here anyway")
    if device.type == "cuda":
        _fast_cuda()
    say = log or _print
    budget_s = None if budget_minutes is None else 60.0 * budget_minutes
    overlap = device.type == "cuda" if overlap_svm is None else overlap_svm
    written, stopped = [], False
    if missing:
        others, busy = _other_runs(results, profile.name)
        n, n_threads = _processes(missing, device, jobs, threads, busy, bool(local) or estimator is not None)
        if others:
            say(_others_line(others, n, n_threads))
        root = A.results_dir(results) / profile.name
        run = A.claim(root / f".compute-{socket.gethostname()}-{os.getpid()}.lock", processes=n,
                      threads=n_threads or torch.get_num_threads())
        run_id = run.owner["token"] if run else None
        try:
            if n == 1:
                if budget_s is not None and estimator is None:
                    estimator = Estimator(profile, device)
                deadline = None if budget_s is None else start + budget_s
                with _torch_threads(n_threads):
                    written, stopped = _compute_here(profile, missing, cache, data_path, device, say, overlap,
                                                     estimator, deadline, run_id)
            else:
                written, stopped = workers.compute(profile, missing, n, n_threads, cache, data_path, device, say,
                                                        overlap, budget_s, start, len(units), run_id)
        finally:
            if run is not None:
                run.release()
    done = {id(u) for u in written}
    there = [u for u in units if u.present or id(u) in done or A.load_json(u.path, u.key) is not None]
    got = {id(u) for u in there}
    return Computed(units, [u.path for u in there], [u for u in missing if id(u) not in got], written, stopped,
                    P._clock() - start, budget_s)


def _others_line(others: list[dict], n: int, threads: int | None) -> str:
    runs = "; ".join(f"process {o.get('pid')} on {o.get('host')} since {o.get('since')}, "
                     f"{o.get('processes', '?')} x {o.get('threads', '?')} threads" for o in others)
    n_threads = threads or torch.get_num_threads()
    return (f"{'another compute is' if len(others) == 1 else f'{len(others)} other computes are'} running on this "
            f"results folder ({runs}): sharing the work with {n} process{'es' if n > 1 else ''} x {n_threads} "
            f"thread{'s' if n_threads > 1 else ''} here; what another run has claimed is skipped")


def _compute_here(profile, missing, cache, data_path, device, say, overlap, estimator, deadline, run_id):
    """The in-process path: every chunk in plan order, then what other runs had claimed. (written, stopped)"""
    with ThreadPoolExecutor(1, thread_name_prefix="mia-svm") if overlap else contextlib.nullcontext() as pool:
        computer = _Computer(profile, cache, data_path, device, say, pool, estimator, deadline, run=run_id)
        for _, group in groupby(missing, key=_chunk_of):
            if not computer.chunk(list(group)):
                break
        else:
            computer.wait()
    return computer.written, computer.stopped


__all__ = ["compute", "dry_run", "Computed", "cores", "RUN_CLAIMS"]
