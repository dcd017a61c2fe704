"""fairgap_utils.computing.launcher: the compute stage as local processes (submitit) and as SLURM jobs.

The local runs use the smoke profile cut to one tiny architecture, the class-wise scenario,
20 training images per class of the synthetic pattern task and two quick methods, so that
each job is mostly Python start-up. The SLURM path runs up to submission, with a stand-in
`sbatch` on PATH that records each call and its script and answers with a job id.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, write_pattern_npz
from fairgap_utils.computing import launcher as L
from fairgap_utils.computing import stage as S
from fairgap_utils.__main__ import main
from fairgap_utils.config import EvalConfig, get_profile
from fairgap_utils.errors import FairgapError

pytest.importorskip("submitit")

METHODS = ("ft", "ga")


def tiny_profile(**changes):
    return get_profile("smoke").replace(**{
        "archs": ("resnet_tiny",), "scenarios": ("class",), "methods": METHODS, "n_train_per_class": 20,
        "n_test_per_class": 10, "eval": EvalConfig(fgsm_eps=(8,), pgd_eps=(8,), pgd_steps=2, attack_images=50,
                                                   batch_size=300), **changes})


@pytest.fixture(scope="module")
def data_path(tmp_path_factory) -> Path:
    return write_pattern_npz(tmp_path_factory.mktemp("patterns") / "cifar10.npz", 23, 10)


@pytest.fixture(scope="module")
def reference(data_path, tmp_path_factory):
    """The single-process run: {result file relative to the results folder: record}."""
    root = tmp_path_factory.mktemp("single")
    S.compute(tiny_profile(), results=root / "R", cache=root / "C", data_path=str(data_path), device="cpu")
    return _records(root / "R")


def _records(results: Path) -> dict:
    return {p.relative_to(results): json.loads(p.read_text()) for p in sorted(results.rglob("*.json"))}


def _measured(record: dict) -> dict:
    """A record without what differs between runs of the same model: timing and provenance."""
    r = {k: v for k, v in record.items() if k not in ("provenance", "eval_time_s", "mia_svm_time_s")}
    r["stats"] = {k: v for k, v in record["stats"].items() if k not in ("time_s", "peak_memory_mb")}
    return r


def _assert_same_results(results: Path, reference: dict):
    got = _records(results)
    assert sorted(got) == sorted(reference)
    for name, record in got.items():
        assert _measured(record) == _measured(reference[name]), name


def _leftovers(*folders) -> list:
    return [p for f in folders for p in Path(f).rglob("*") if p.name.endswith((".tmp", ".lock", ".break"))]


# --------------------------------------------------------------------------- units

def test_units_originals_first_then_one_per_scenario_and_method(tmp_path):
    p = get_profile("smoke").replace(methods=("retrain", "ft"))
    units = L.compute_units(p, seeds=[0, 1], results=tmp_path / "R", cache=tmp_path / "C")
    names = [u.name for u in units]
    assert names[:5] == ["original resnet_tiny seed0", "retrain resnet_tiny seed0 class", "ft resnet_tiny seed0 class",
                         "retrain resnet_tiny seed0 random", "ft resnet_tiny seed0 random"]
    assert len(units) == 2 * 2 * (1 + 2 * 2)
    by_name = {u.name: u for u in units}
    ft = by_name["ft vit_micro seed1 random"]
    assert ft.after == "original vit_micro seed1" and ft.fn is S.compute
    assert (ft.kwargs["archs"], ft.kwargs["seeds"], ft.kwargs["scenarios"], ft.kwargs["methods"]) == (
        ["vit_micro"], [1], ["random"], ["ft"])
    original = by_name["original vit_micro seed1"]
    assert original.after is None and original.kwargs["methods"] == [] and original.kwargs["scenarios"] == [
        "class", "random"]
    assert Path(ft.kwargs["results"]).is_absolute() and Path(ft.kwargs["cache"]).is_absolute()


def test_bad_launcher_options_are_named():
    with pytest.raises(FairgapError, match="unknown launcher 'pbs'"):
        L.Launcher(kind="pbs")
    with pytest.raises(FairgapError, match="jobs"):
        L.Launcher(kind="local", jobs=0)
    with pytest.raises(FairgapError, match="sbatch option 'qos'"):
        L.Launcher(kind="slurm", sbatch=("qos",))


# --------------------------------------------------------------------------- local processes

def test_local_launcher_matches_the_single_process_run(data_path, reference, tmp_path):
    report = L.submit(tiny_profile(), results=tmp_path / "R", cache=tmp_path / "C", data_path=data_path,
                       launcher=L.Launcher(kind="local", jobs=2, threads=1))
    assert report.ok and len(report.done) == 1 + len(METHODS)
    _assert_same_results(tmp_path / "R", reference)
    assert not _leftovers(tmp_path)
    logs = sorted((tmp_path / "C" / "jobs").glob("*/*_log.err"))
    assert len(logs) == 1 + len(METHODS)                         # one process per unit, each with its log


# Put on the killable run's PYTHONPATH: every python it starts (the launcher, its job) loads it. The
# original's training says that it started (under its lock), then waits to be killed, so the test
# never races the job to its end, however fast or slow the machine.
STALL = """
import os
if os.environ.get("FAIRGAP_TEST_STALL"):
    import time
    import fairgap_utils.computing.pipeline as P

    def stall(*a, **k):
        open(os.environ["FAIRGAP_TEST_STALL"], "w").close()
        while True:
            time.sleep(1)
    P.train_supervised = stall
"""

KILLABLE = """
import sys
sys.path.insert(0, {repo!r})
from fairgap_utils.computing import launcher as L
from test_launcher import tiny_profile
L.submit(tiny_profile(methods=("ga",)), results={results!r}, cache={cache!r}, data_path={data!r},
          launcher=L.Launcher(kind="local", jobs=2, threads=1))
"""


def test_killed_job_leaves_nothing_half_written_and_the_rerun_resumes(data_path, reference, tmp_path):
    results, cache = tmp_path / "R", tmp_path / "C"
    script = tmp_path / "run.py"
    script.write_text(KILLABLE.format(repo=str(REPO), results=str(results), cache=str(cache), data=str(data_path)))
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(STALL)
    started = tmp_path / "training-started"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hook), str(REPO), str(REPO / "tests")]),
               FAIRGAP_TEST_STALL=str(started))
    proc = subprocess.Popen([sys.executable, str(script)], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600                          # generous: it ends as soon as training starts
    while not started.exists():                                # the original is being trained, and stays so
        assert proc.poll() is None, "the run ended before the original's training started"
        assert time.monotonic() < deadline, "the original's training never started"
        time.sleep(0.05)
    assert list((cache / "checkpoints").glob("*.lock"))         # under its lock
    os.killpg(proc.pid, signal.SIGKILL)                         # the launcher and its job, mid-training
    proc.wait()
    [lock] = list((cache / "checkpoints").glob("*.lock"))        # what the killed job left: its lock only
    assert not list(results.rglob("*.json")) and not list((cache / "checkpoints").glob("*.pt"))

    report = L.submit(tiny_profile(methods=("ga",)), results=results, cache=cache, data_path=data_path,
                       launcher=L.Launcher(kind="local", jobs=2, threads=1))
    assert report.ok, report.summary()
    _assert_same_results(results, {k: v for k, v in reference.items() if k.stem in ("original", "ga")})
    assert not _leftovers(tmp_path)
    logs = "".join(p.read_text() for p in (cache / "jobs").glob("*/*_log.out"))
    assert f"broke the stale lock {lock.name}" in logs


# --------------------------------------------------------------------------- slurm, up to submission

SBATCH = """#!/bin/bash
# stand-in sbatch: record the call and its script, answer like sbatch
n=$(( $(ls "$SBATCH_RECORD" | wc -l) + 1001 ))
{ echo "ARGS: $*"; cat "${@: -1}"; } > "$SBATCH_RECORD/$n.sh"
echo "Submitted batch job $n"
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    bin_dir, record = tmp_path / "bin", tmp_path / "sbatch-calls"
    bin_dir.mkdir()
    record.mkdir()
    (bin_dir / "sbatch").write_text(SBATCH)
    (bin_dir / "srun").write_text("#!/bin/bash\nexit 1\n")      # only looked up: submitit's sign of a cluster
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SBATCH_RECORD", str(record))
    return record


def _sbatch_options(script: str) -> dict:
    return dict(line[len("#SBATCH --"):].split("=", 1) for line in script.splitlines()
                if line.startswith("#SBATCH --") and "=" in line)


def _submitted(folder: Path, job_id: str):
    from submitit.core.utils import pickle_load
    delayed = pickle_load(folder / job_id / f"{job_id}_submitted.pkl")
    fn, kwargs = delayed.args[0], delayed.args[1]
    return delayed.function, fn, kwargs


def test_slurm_submission_arrays_dependencies_and_options(fake_slurm, tmp_path, capsys):
    rc = main(["compute", "--profile", "smoke", "--methods", "retrain", "ft", "--launcher", "slurm",
               "--partition", "gpu-long", "--gpus", "2", "--time", "120", "--account", "lab", "--cpus", "6",
               "--setup", "module load cuda/12", "--sbatch", "qos=high", "mem=32G",
               "--results", str(tmp_path / "R"), "--cache", str(tmp_path / "C")])
    out = capsys.readouterr().out
    assert rc == 0
    calls = sorted(fake_slurm.iterdir())
    assert [c.name for c in calls] == ["1001.sh", "1002.sh", "1003.sh"]   # originals, then one array per original
    scripts = [c.read_text() for c in calls]
    opts = [_sbatch_options(s) for s in scripts]
    for o, s in zip(opts, scripts):
        assert (o["partition"], o["gpus-per-node"], o["time"], o["account"], o["cpus-per-task"]) == (
            "gpu-long", "2", "120", "lab", "6")
        assert (o["qos"], o["mem"], o["kill-on-invalid-dep"]) == ("high", "32G", "yes")
        assert "module load cuda/12" in s.split("# setup", 1)[1]
    assert opts[0]["array"] == "0-1%2" and "dependency" not in opts[0]
    assert (opts[1]["array"], opts[1]["dependency"]) == ("0-3%4", "afterok:1001_0")
    assert (opts[2]["array"], opts[2]["dependency"]) == ("0-3%4", "afterok:1001_1")
    # what each array task will run: the unit printed beside its job id
    folder = tmp_path / "C" / "jobs"
    assert "job 1002_3     ft resnet_tiny seed0 random   (afterok:1001_0)" in out and str(folder) in out
    function, fn, kwargs = _submitted(folder, "1002_3")
    assert function is L.work and fn is S.compute
    assert (kwargs["archs"], kwargs["scenarios"], kwargs["methods"]) == (["resnet_tiny"], ["random"], ["ft"])
    _, _, kwargs = _submitted(folder, "1001_1")
    assert (kwargs["archs"], kwargs["methods"], kwargs["scenarios"]) == (["vit_micro"], [], ["class", "random"])
    assert kwargs["results"] == str((tmp_path / "R").resolve())


def test_slurm_needs_a_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))                      # no srun, no sbatch
    with pytest.raises(FairgapError, match="SLURM login node"):
        L.submit(tiny_profile(), results=tmp_path / "R", cache=tmp_path / "C", launcher=L.Launcher(kind="slurm"))


def test_failed_job_is_reported_with_its_log_its_dependents_skipped_exit_code_1(tmp_path, capsys):
    rc = main(["compute", "--profile", "smoke", "--arch", "resnet_tiny", "--scenario", "class", "--methods", "ft",
               "ga", "--launcher", "local", "--jobs", "2", "--data", str(tmp_path / "no-such-data.npz"),
               "--results", str(tmp_path / "R"), "--cache", str(tmp_path / "C")])
    out = capsys.readouterr().out
    assert rc == 1
    failed = next(line for line in out.splitlines() if line.startswith("FAILED"))
    assert failed.startswith("FAILED original resnet_tiny seed0 (job ") and "no-such-data.npz" in failed
    log = Path(out.split("log: ", 1)[1].split()[0])
    assert log.is_file() and "does not exist" in log.read_text()
    assert "skipped ft resnet_tiny seed0 class: a unit it needs failed" in out
    assert "skipped ga resnet_tiny seed0 class" in out and "rerun the same command" in out
    assert not list((tmp_path / "R").rglob("*.json"))
