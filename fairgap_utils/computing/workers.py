"""The processes of one `stage.compute`: spawned, one per core, sharing the (arch, seed) chunks.

    compute(profile, missing, n=2, threads=1, ...)     # what stage.compute calls with jobs > 1

The calling process hands out work and prints; each worker process (`_worker`, started fresh
with the `spawn` method and OMP_NUM_THREADS set before torch is imported there) asks it for a
chunk, computes it with `pipeline._Computer` (each unit under its claim, as a run in one process
does) and reports every file it writes. Work goes out as whole chunks, heaviest first
(`pipeline._weights`); once none is left, an idle process is sent to help with the unstarted
units of the chunk with the most work left; once nothing is left, to wait for what it skipped.
"""
from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import pickle
import queue
import signal
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby

import torch

from .. import data as D
from ..config import Profile
from ..errors import FairgapError
from . import pipeline as P
from .estimate import Estimator


def compute(profile: Profile, missing: list, n: int, threads: int, cache, data_path, device, say, overlap: bool,
            budget_s: float | None, start: float, total: int, run_id: str | None) -> tuple[list, bool]:
    """The `missing` units (of `total`) on `n` spawned processes (`_worker`), `threads` torch threads each;
    returns (the units written, whether the budget stopped it).

    This process hands out whole chunks, then help with unstarted units (the module's docstring), and
    prints each process's lines prefixed by its number, each file's with the count of result files
    present. An error in a process (or Ctrl-C) ends them all: finished files are kept, claims released.
    """
    if data_path is None and not os.environ.get("FAIRGAP_DATA"):
        D.load_arrays(profile.dataset)           # a download, if one is needed, once here, not in every process
    ctx = multiprocessing.get_context("spawn")
    messages = ctx.Queue()
    chunks = {key: list(group) for key, group in groupby(missing, key=P._chunk_of)}
    by_path = {str(u.path): u for u in missing}
    weight = P._weights(profile, P._with_training(missing, cache))
    taken, landed, written = set(), set(), []

    def work_left(key, seen):
        return sum(weight[str(u.path)] for u in chunks[key] if str(u.path) not in seen)
    fresh = sorted(chunks, key=lambda k: -work_left(k, ()))
    options = dict(cache=cache, data_path=data_path, device=str(device), overlap_svm=overlap,
                   budget=budget_s is not None, run=run_id)
    workers, alive, stopped, failure = {}, set(), False, None

    def task():
        left_s = None if budget_s is None else budget_s - (P._clock() - start)
        if not stopped and fresh:
            key = fresh.pop(0)
            return "chunk", [u for u in chunks[key] if str(u.path) not in landed], False, left_s
        open_ = {k: work_left(k, taken | landed) for k in chunks if k not in fresh}
        key = max(open_, key=open_.get, default=None)
        if not stopped and key is not None and open_[key] > 0:
            return "chunk", [u for u in chunks[key] if str(u.path) not in taken | landed], True, left_s
        return "finish", None, False, left_s
    present = total - len(missing)
    try:
        env = dict(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), FAIRGAP_PROGRESS="0")
        for i in range(1, n + 1):
            tasks = ctx.Queue()
            process = ctx.Process(target=_worker, args=(i, profile, options, threads, tasks, messages),
                                  name=f"fairgap-compute-{i}", daemon=True)
            with _environment(env):              # before torch is imported there
                process.start()
            workers[i] = process, tasks
            alive.add(i)
        say(f"computing {len(missing)} result files in {n} processes x {threads} thread{'s' if threads > 1 else ''}"
            f" ({len(chunks)} architecture-seed chunks, heaviest first)")
        while alive and failure is None:
            try:
                kind, i, subject, text = messages.get(timeout=1.0)
            except queue.Empty:
                for i in sorted(alive):
                    code = workers[i][0].exitcode
                    if code not in (None, 0):    # ended without a word: killed (out of memory?)
                        failure = RuntimeError(f"compute process {i} ended with exit code {code}"), None
                continue
            if kind == "idle":
                workers[i][1].put(task())
            elif kind == "line":
                say(f"[{i}] {text}")
            elif kind == "claimed":
                taken.add(subject)
            elif kind in ("written", "present"):
                landed.add(subject)
                if kind == "written":
                    written.append(by_path[subject])
                    say(f"[{i}] {text} · {present + len(landed)}/{total} result files, {len(alive)} process"
                        f"{'es' if len(alive) > 1 else ''}, {P.duration(P._clock() - start)}")
            elif kind == "stopped":
                stopped = True
            elif kind == "exit":
                alive.discard(i)
                workers[i][0].join()
            elif kind == "interrupted":
                raise KeyboardInterrupt
            elif kind == "error":
                failure = subject, text
    finally:
        for process, _ in workers.values():      # on an error or Ctrl-C: SIGTERM, which releases their claims
            if process.is_alive():
                process.terminate()
        for process, _ in workers.values():
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join()
    if failure is not None:
        error, text = failure
        if isinstance(error, FairgapError) or text is None:
            raise error                          # bad input: one line, as anywhere else
        raise error from _WorkerTraceback(text)
    return sorted(written, key=lambda u: missing.index(u)), stopped


class _WorkerTraceback(Exception):
    """The traceback of an error in a compute process, shown as the cause of the error re-raised here."""

    def __str__(self):
        return "\n" + self.args[0]


@contextlib.contextmanager
def _environment(values: dict):
    """Environment variables set for the block (a spawned process inherits them), then restored."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _Prefixed(io.TextIOBase):
    """A text stream that starts every line with `prefix`: a compute process's own prints (waiting for a lock)."""

    def __init__(self, stream, prefix: str):
        self.stream, self.prefix, self.at_start = stream, prefix, True

    def write(self, text: str) -> int:
        out = []
        for piece in text.splitlines(keepends=True):
            out.append((self.prefix if self.at_start else "") + piece)
            self.at_start = piece.endswith("\n")
        self.stream.write("".join(out))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _ending(signum, frame):
    """A compute process's SIGINT (Ctrl-C reaches the whole process group) or SIGTERM (from the parent):
    unwind, so that claims and locks are released, deaf to the next signal while it does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt if signum == signal.SIGINT else SystemExit(128 + signum)


def _portable(error: BaseException) -> BaseException:
    """The error if it survives pickling (to the parent), else a RuntimeError with its type and message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # noqa: BLE001 - any failure to pickle or unpickle
        return RuntimeError(f"{type(error).__name__}: {error}")


def _worker(index: int, profile: Profile, options: dict, threads: int, tasks, messages) -> None:
    """One spawned compute process: asks the parent for work (a chunk to own, one to help with, or
    finish: wait for what it skipped) until it is told to finish; reports lines and files as they land."""
    signal.signal(signal.SIGINT, _ending)
    signal.signal(signal.SIGTERM, _ending)
    torch.set_num_threads(threads)
    sys.stdout = _Prefixed(sys.stdout, f"[{index}] ")

    def tell(kind, unit=None, text=None):
        messages.put((kind, index, None if unit is None else str(unit.path), text))

    def next_task():
        while True:
            try:
                return tasks.get(timeout=5)
            except queue.Empty:
                if not multiprocessing.parent_process().is_alive():
                    raise SystemExit(1) from None      # the parent is gone: nobody to hand out work
    device = torch.device(options["device"])
    try:
        if device.type == "cuda":
            P._fast_cuda()
        estimator = None
        if options["budget"]:
            estimator = Estimator(profile, device)
        overlap = options["overlap_svm"]
        with ThreadPoolExecutor(1, thread_name_prefix="mia-svm") if overlap else contextlib.nullcontext() as pool:
            computer = P._Computer(profile, options["cache"], options["data_path"], device,
                                 lambda line: tell("line", text=line), pool, estimator, tell=tell, run=options["run"])
            while True:
                tell("idle")
                kind, units, helper, left_s = next_task()
                computer.deadline = None if left_s is None else P._clock() + left_s
                if kind == "finish":
                    if not computer.wait():
                        tell("stopped")
                    break
                arch, seed = P._chunk_of(units[0])
                tell("line", text=f"helping with {arch} seed {seed}: {len(units)} result files not started"
                     if helper else f"{arch} seed {seed}: {len(units)} result files to compute")
                if not computer.chunk(units, helper):
                    tell("stopped")
    except KeyboardInterrupt:
        tell("interrupted")
    except SystemExit:
        pass
    except BaseException as e:  # noqa: BLE001 - every error goes to the parent, which raises it
        messages.put(("error", index, _portable(e), traceback.format_exc()))
    finally:
        tell("exit")


__all__ = ["compute"]
