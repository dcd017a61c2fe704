"""Many jobs instead of one process: the compute stage as jobs (`Job`), run locally or on SLURM (`submit`).

    python -m fairgap_utils compute --profile cpu --launcher local --jobs 2
    python -m fairgap_utils compute --profile paper --launcher slurm --partition gpu --time 240

A job is one call of `stage.compute` on a slice of the profile, so it writes exactly
the result files that slice has:

- `original <arch> seed<S>`: trains the original model (checkpointed) and measures it in
  every scenario;
- `<method> <arch> seed<S> <scenario>`: Retrain or one method (with whatever runs the
  pipeline attaches to it: the k-sweep, variants, Retrain replicates) in one scenario. It
  needs only its original's checkpoint, so it starts after that original's unit.

Launchers: `inline` (the default) is `stage.compute` itself: `jobs` processes of its own (default:
one per core), sharing the work chunk by chunk. `local` runs the units as `jobs` parallel processes
through submitit's local executor,
starting a unit once its original is done. `slurm` submits them through submitit: the
originals as one job array, then per (arch, seed) one array of its units with the sbatch
dependency `afterok:<its original>` (and `--kill-on-invalid-dep=yes`, so a failed original
cancels them instead of leaving them pending forever); it returns once submitted (`wait`
waits and reports). Jobs share the results and cache folders: results are written
atomically and checkpoints trained under a lock (`artifacts.lock`), so a killed job leaves
nothing half-written and a rerun of the same command computes only what is missing.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import FairgapError, check_choice, check_range
from . import artifacts as A

LAUNCHERS = ("inline", "local", "slurm")


@dataclass(frozen=True)
class Launcher:
    """Where the units run, with the options of each kind (`python -m fairgap_utils compute --help`)."""
    kind: str = "inline"            # inline (this process) | local (parallel processes) | slurm
    jobs: int | None = None         # processes at once (inline and local; None: one per core)
    partition: str | None = None    # slurm: --partition (None: the cluster's default)
    gpus: int = 1                   # slurm: GPUs per job
    time_min: int | None = None     # wall-clock limit per job in minutes (slurm default 240; local: none)
    account: str | None = None      # slurm: --account
    cpus: int | None = None         # slurm: CPUs per job (None: the cluster's default)
    setup: tuple = ()               # slurm: shell lines run before each job (module load, venv activation)
    sbatch: tuple = ()              # slurm: more sbatch options, "key=value" (qos=high, mem=32G, ...)
    log_dir: str | None = None      # submitit's folder (None: <cache>/jobs)
    wait: bool = False              # slurm: wait for the jobs and report failures
    threads: int | None = None      # local: torch threads per job (None: the cores shared out)

    def __post_init__(self):
        check_choice("launcher", self.kind, LAUNCHERS)
        if self.jobs is not None:
            check_range("jobs (processes at once)", self.jobs, 1, 10_000)
            if self.jobs != int(self.jobs):
                raise FairgapError(f"jobs (processes at once) {self.jobs!r} is not a whole number")
        check_range("gpus per job", self.gpus, 0, 64)
        if self.time_min is not None:
            check_range("time limit per job (minutes)", self.time_min, 1, 60 * 24 * 365)
        for opt in self.sbatch:
            if "=" not in opt or opt.startswith("="):
                raise FairgapError(f"sbatch option {opt!r} is not key=value (e.g. qos=high, mem=32G)")

    def folder(self, cache=None) -> Path:
        return Path(self.log_dir or A.cache_dir(cache) / "jobs").resolve()


@dataclass(frozen=True, eq=False)
class Job:
    """One job: `fn(**kwargs)` (a module-level function, pickled by reference), after the job named `after`.

    (Not `pipeline.Unit`, one result file: a job computes the result files of a slice.)"""
    name: str
    fn: Callable
    kwargs: dict
    after: str | None = None


@dataclass
class Report:
    """What the launcher did: units done, failed (with the log to read), skipped, or submitted."""
    folder: Path
    done: list = field(default_factory=list)        # unit names
    failed: list = field(default_factory=list)      # (unit name, job id, last line of the error, log path)
    skipped: list = field(default_factory=list)     # (unit name, why)
    submitted: list = field(default_factory=list)   # (unit name, job id, dependency)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    def summary(self) -> str:
        lines = []
        for name, job_id, dep in self.submitted:
            lines.append(f"  job {job_id:<10} {name}" + (f"   ({dep})" if dep else ""))
        if self.submitted:
            lines.insert(0, f"submitted {len(self.submitted)} units:")
            lines.append(f"logs: {self.folder}/<job id>/. Once they have finished, rerun the same command to "
                         "fill any gap (units already done end at once), then build the book")
        if self.done:
            lines.append(f"{len(self.done)} units done")
        for name, job_id, message, log in self.failed:
            lines.append(f"FAILED {name} (job {job_id}): {message}\n    log: {log}")
        for name, why in self.skipped:
            lines.append(f"skipped {name}: {why}")
        if self.failed or self.skipped:
            lines.append("finished results are kept; rerun the same command to compute what is missing")
        return "\n".join(lines)


def _absolute(path):
    return None if path is None else str(Path(path).expanduser().resolve())


def compute_units(profile, archs=None, seeds=None, scenarios=None, methods=None, results=None, cache=None,
                  data_path=None) -> list[Job]:
    """The compute stage of `profile` (or of the slice) as units: originals first, each with its dependents."""
    from . import stage  # lazy: the CLI imports this module for its options, the stage imports torch
    from ..registries import methods_of  # lazy: as the stage (the registries import torch)
    archs, seeds = list(archs or profile.archs), list(seeds or profile.seeds)
    scenarios, methods = list(scenarios or profile.scenarios), list(methods_of(profile) if methods is None else methods)
    common = dict(profile=profile, results=_absolute(A.results_dir(results)), cache=_absolute(A.cache_dir(cache)),
                  data_path=_absolute(data_path or os.environ.get("FAIRGAP_DATA") or None))
    units = []
    for arch in archs:
        for seed in seeds:
            original = Job(f"original {arch} seed{seed}", stage.compute,
                            dict(common, archs=[arch], seeds=[seed], scenarios=scenarios, methods=[]))
            units.append(original)
            units += [Job(f"{method} {arch} seed{seed} {scenario}", stage.compute,
                           dict(common, archs=[arch], seeds=[seed], scenarios=[scenario], methods=[method]),
                           after=original.name)
                      for scenario in scenarios for method in methods]
    return units


def submit(profile, archs=None, seeds=None, scenarios=None, methods=None, results=None, cache=None,
            data_path=None, launcher: Launcher = Launcher()) -> Report:
    """`stage.compute` through a launcher: inline (its own `jobs` processes), local processes or SLURM jobs."""
    if launcher.kind == "inline":
        from .stage import compute as compute_inline  # lazy: as in compute_units
        compute_inline(profile, archs, seeds, scenarios, methods, results, cache, data_path, jobs=launcher.jobs)
        return Report(folder=launcher.folder(cache), done=[f"compute {profile.name}"])
    return run(compute_units(profile, archs, seeds, scenarios, methods, results, cache, data_path), launcher, cache)


def run(units: list[Job], launcher: Launcher, cache=None, finish: Job | None = None) -> Report:
    """Run units (each after the unit it names), then `finish` once all succeeded."""
    names = {u.name for u in units}
    for u in units:
        if u.after is not None and u.after not in names:
            raise FairgapError(f"unit {u.name!r} waits for {u.after!r}, which is not among the units")
    report = Report(folder=launcher.folder(cache))
    if launcher.kind == "inline":
        for u in units + ([finish] if finish else []):
            u.fn(**u.kwargs)
            report.done.append(u.name)
        return report
    if launcher.kind == "local":
        _run_local(units + ([finish] if finish else []), launcher, report, finish)
        return report
    _submit_slurm(units, launcher, report, finish)
    return report


def work(fn: Callable, kwargs: dict, threads: int | None = None) -> list[str]:
    """What a job runs: one unit (with `threads` torch threads); returns the files it wrote or reused."""
    if threads:
        import torch  # lazy: the CLI imports this module for its options before any command needs torch
        torch.set_num_threads(threads)
    out = fn(**kwargs)
    return [str(p) for p in out] if isinstance(out, (list, tuple)) else []


def _submitit():
    try:
        import submitit  # lazy: submitit is optional: only the local and slurm launchers use it
    except ImportError:
        raise FairgapError("the local and slurm launchers need submitit: pip install submitit") from None
    return submitit


def _succeeded(job) -> bool:
    try:
        return job.paths.result_pickle.exists() and job.exception() is None
    except Exception:  # noqa: BLE001 - submitit raises several kinds when a job died without a result
        return False


def _failure(job) -> tuple[str, str]:
    """(last line of the job's error, path of its error log)."""
    try:
        err = job.exception()
    except Exception as e:  # noqa: BLE001 - submitit raises several kinds when a job died without a result
        err = e
    text = str(err) if err is not None else f"state {job.state}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not set(ln.strip()) <= set("-")]
    message = next((ln for ln in reversed(lines) if not ln.startswith(("You can check", "or at paths", "- /"))),
                   text.strip() or "no result")
    return message[:300], str(job.paths.stderr)


def _run_local(units: list[Job], launcher: Launcher, report: Report, finish: Job | None) -> None:
    """Keep `jobs` submitit local jobs running; start a unit once the unit it waits for succeeded."""
    import torch  # lazy: the CLI imports this module for its options before any command needs torch
    submitit = _submitit()
    executor = submitit.LocalExecutor(folder=report.folder / "%j")
    executor.update_parameters(timeout_min=launcher.time_min or 60 * 24 * 365)
    gpus = list(range(torch.cuda.device_count()))
    from .stage import cores  # lazy: as in compute_units
    jobs = launcher.jobs or cores()
    threads = launcher.threads or max(1, cores() // jobs)
    pending, running, state = list(units), {}, {}
    after_all = {u.name for u in units if u is not finish}
    try:
        while pending or running:
            for name, (job, gpu, start) in list(running.items()):
                if not job.done():
                    continue
                del running[name]
                if _succeeded(job):
                    state[name] = "done"
                    report.done.append(name)
                    print(f"done    {name} ({time.monotonic() - start:.0f} s)", flush=True)
                else:
                    state[name] = "failed"
                    message, log = _failure(job)
                    report.failed.append((name, job.job_id, message, log))
                    print(f"failed  {name} (job {job.job_id}; log {log})", flush=True)
            for u in list(pending):
                needs = after_all if u is finish else {u.after} - {None}
                if any(state.get(n) in ("failed", "skipped") for n in needs):
                    pending.remove(u)
                    state[u.name] = "skipped"
                    report.skipped.append((u.name, "a unit it needs failed"))
                elif len(running) < jobs and all(state.get(n) == "done" for n in needs):
                    pending.remove(u)
                    gpu = min(gpus, key=lambda g: sum(r[1] == g for r in running.values())) if gpus else None
                    executor.update_parameters(gpus_per_node=0 if gpu is None else 1,
                                               visible_gpus=() if gpu is None else (gpu,))
                    job = executor.submit(work, u.fn, u.kwargs, threads)
                    running[u.name] = (job, gpu, time.monotonic())
                    print(f"started {u.name} (job {job.job_id})", flush=True)
            time.sleep(0.2)
    except BaseException:
        for job, _, _ in running.values():
            job.cancel()
        raise


def _submit_slurm(units: list[Job], launcher: Launcher, report: Report, finish: Job | None) -> None:
    """Originals as one array; per original, an array of its dependents (afterok); `finish` after all."""
    submitit = _submitit()
    try:
        executor = submitit.SlurmExecutor(folder=report.folder / "%j")
    except RuntimeError as e:
        raise FairgapError(f"--launcher slurm needs a SLURM login node (sbatch and srun on PATH): {e}") from None
    extra = dict(opt.split("=", 1) for opt in launcher.sbatch)
    extra["kill-on-invalid-dep"] = "yes"
    executor.update_parameters(
        job_name="fairgap", time=launcher.time_min or 240, gpus_per_node=launcher.gpus or None,
        partition=launcher.partition, account=launcher.account, cpus_per_task=launcher.cpus,
        setup=list(launcher.setup), additional_parameters=extra)
    jobs = []

    def submit(batch: list[Job], dependency: str | None) -> list[str]:
        executor.update_parameters(dependency=dependency)
        with executor.batch():
            batch_jobs = [executor.submit(work, u.fn, u.kwargs) for u in batch]
        for u, job in zip(batch, batch_jobs):
            report.submitted.append((u.name, job.job_id, dependency))
            jobs.append((u.name, job))
        return [job.job_id for job in batch_jobs]

    roots = [u for u in units if u.after is None]
    root_ids = dict(zip((u.name for u in roots), submit(roots, None) if roots else []))
    arrays = sorted({job_id.split("_")[0] for job_id in root_ids.values()})
    for name, job_id in root_ids.items():
        dependents = [u for u in units if u.after == name]
        if dependents:
            arrays.append(submit(dependents, f"afterok:{job_id}")[0].split("_")[0])
    if finish is not None:
        submit([finish], "afterok:" + ":".join(arrays))
    if launcher.wait:
        for name, job in jobs:
            job.wait()
            if _succeeded(job):
                report.done.append(name)
            else:
                report.failed.append((name, job.job_id, *_failure(job)))


def main_options(args) -> Launcher:
    """The Launcher named by the command line's options."""
    return Launcher(kind=args.launcher, jobs=args.jobs, partition=args.partition, gpus=args.gpus,
                    time_min=args.time, account=args.account, cpus=args.cpus, setup=tuple(args.setup or ()),
                    sbatch=tuple(args.sbatch or ()), log_dir=args.log_dir, wait=args.wait)


def add_options(ap) -> None:
    """The launcher options of `compute` and `tune`."""
    g = ap.add_argument_group("launcher (compute, tune)")
    g.add_argument("--launcher", default="inline", choices=LAUNCHERS,
                   help="inline: this process (default); local: --jobs parallel processes; slurm: SLURM jobs")
    g.add_argument("--jobs", type=int, help="processes at once (inline and local; default: one per core; "
                                            "compute's default also stops at one per architecture-seed pair)")
    g.add_argument("--partition", help="slurm: partition (default: the cluster's)")
    g.add_argument("--gpus", type=int, default=1, help="slurm: GPUs per job (default 1)")
    g.add_argument("--time", type=int, help="time limit per job in minutes (slurm default 240; local: none)")
    g.add_argument("--account", help="slurm: account to charge")
    g.add_argument("--cpus", type=int, help="slurm: CPUs per job (default: the cluster's)")
    g.add_argument("--setup", nargs="+", help="slurm: shell lines run before each job, e.g. 'module load cuda'")
    g.add_argument("--sbatch", nargs="+", help="slurm: more sbatch options as key=value, e.g. qos=high mem=32G")
    g.add_argument("--log-dir", help="job logs and submitit files (default: <cache>/jobs)")
    g.add_argument("--wait", action="store_true", help="slurm: wait for the jobs and report failures")


__all__ = ["Launcher", "Job", "Report", "submit", "compute_units", "run", "work", "LAUNCHERS"]
