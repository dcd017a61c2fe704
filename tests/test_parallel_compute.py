"""pipeline.compute on several processes, and two computes sharing one results folder.

A reduced smoke profile: `resnet_tiny`, the class-wise scenario, Retrain and FT, 20 training
images per class, seeds 0 and 1: two (arch, seed) chunks, seven result files (seed 0 adds the
noise floor's Retrain replicate). The images are the synthetic pattern task even where the local
CIFAR-10 copy exists: what is tested (who computes which file) does not depend on the pixels, and
every process these tests start would decode the whole JPEG pack (about 5 s each on one core).
Every process runs one torch thread, so the numbers are comparable bit for bit.

Each test compares result files with those of one in-process run (`jobs=1`) in every number
but times and provenance. The concurrent runs count their writes: `sitecustomize.py` in a
folder put first on PYTHONPATH wraps `artifacts.save_json` in every process they start
(their spawned workers too) to append each path written to one log.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import REPO, write_pattern_npz
from fairgap_utils.computing import artifacts as A
from fairgap_utils.computing import pipeline as P
from fairgap_utils.computing import stage as S
from fairgap_utils.config import EvalConfig, get_profile
from fairgap_utils.errors import FairgapError

SLICE = dict(archs=("resnet_tiny",), scenarios=("class",), methods=("retrain", "ft"), seeds=(0, 1),
             n_train_per_class=20, n_test_per_class=10,
             eval=EvalConfig(fgsm_eps=(8,), pgd_eps=(8,), pgd_steps=2, attack_images=50, batch_size=300))
FILES = 7    # per seed: original, retrain, ft; seed 0 also retrain-r1


def sliced():
    return get_profile("smoke").replace(**SLICE)


@pytest.fixture(scope="module")
def data_path(tmp_path_factory) -> str:
    return str(write_pattern_npz(tmp_path_factory.mktemp("patterns") / "cifar10.npz", 23, 10))


@pytest.fixture(scope="module")
def reference(data_path, tmp_path_factory) -> dict:
    """One run in this process: {result file relative to the results folder: record}."""
    root = tmp_path_factory.mktemp("single")
    done = S.compute(sliced(), results=root / "R", cache=root / "C", data_path=data_path, device="cpu", jobs=1,
                     log=lambda line: None)
    assert done.complete and len(done) == FILES
    return _records(root / "R")


def _records(results: Path) -> dict:
    return {p.relative_to(results): json.loads(p.read_text()) for p in sorted(results.rglob("*.json"))}


def _measured(record: dict) -> dict:
    """A record without what differs between runs of one model: times and provenance (thread count, date)."""
    r = {k: v for k, v in record.items() if k not in ("provenance", "eval_time_s", "mia_svm_time_s")}
    r["stats"] = {k: v for k, v in record["stats"].items() if k not in ("time_s", "peak_memory_mb")}
    return r


def _assert_same_results(results: Path, reference: dict):
    got = _records(results)
    assert sorted(got) == sorted(reference)
    for name, record in got.items():
        assert _measured(record) == _measured(reference[name]), name


def _leftovers(folder: Path) -> list:
    return [p for p in folder.rglob("*") if p.name.endswith((".tmp", ".lock", ".break"))]


# --------------------------------------------------------------------------- one run, several processes

def test_two_processes_write_the_files_of_one(data_path, reference, tmp_path):
    lines = []
    done = S.compute(sliced(), results=tmp_path / "R", cache=tmp_path / "C", data_path=data_path, device="cpu",
                     jobs=2, threads=1, log=lines.append)
    assert done.complete and len(done.written) == FILES and not done.stopped_for_budget
    _assert_same_results(tmp_path / "R", reference)
    assert not _leftovers(tmp_path)
    # each process's lines carry its number; each file's line the count present so far
    assert lines[0] == "computing 7 result files in 2 processes x 1 thread (2 architecture-seed chunks, heaviest first)"
    assert {line[:3] for line in lines[1:]} == {"[1]", "[2]"}
    counts = [line.rsplit("· ", 1)[1].split(" result files")[0] for line in lines if "· " in line]
    assert counts == [f"{i}/{FILES}" for i in range(1, FILES + 1)]
    assert "resnet_tiny seed 0: 4 result files to compute" in " ".join(lines)


def test_default_processes_follow_the_free_cores_and_the_chunks(monkeypatch):
    units = P.plan(sliced())
    cpu, cuda = P.torch.device("cpu"), P.torch.device("cuda")
    monkeypatch.setattr(S, "cores", lambda: 8)
    assert S._processes(units, cpu, None, None, 0, False) == (2, 4)          # two chunks: two processes
    assert S._processes(units[:4], cpu, None, None, 0, False) == (1, None)   # one chunk: here, own threads
    assert S._processes(units, cpu, None, None, 7, False) == (1, 1)          # another run uses 7 cores
    assert S._processes(units, cpu, 5, None, 0, False) == (5, 1)             # asked: helpers beyond the chunks
    assert S._processes(units, cuda, None, None, 0, False) == (1, None)
    assert S._processes(units, cpu, None, None, 0, True) == (1, None)        # a method only this process has


def test_a_run_that_finds_another_says_so_and_leaves_it_its_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "cores", lambda: 3)
    threads = []
    monkeypatch.setattr(S, "_compute_here", lambda *a: threads.append(P.torch.get_num_threads()) or ([], False))
    # this process stands in for another run: 2 processes x 1 thread on this folder
    other = A.claim(tmp_path / "R" / "smoke" / ".compute-other.lock", processes=2, threads=1)
    lines = []
    S.compute(sliced(), results=tmp_path / "R", device="cpu", log=lines.append)
    assert len(lines) == 1 and lines[0].startswith(
        f"another compute is running on this results folder (process {os.getpid()} on {socket.gethostname()} since ")
    assert lines[0].endswith("2 x 1 threads): sharing the work with 1 process x 1 thread here; "
                             "what another run has claimed is skipped")
    assert threads == [1]                                  # 3 cores, 2 busy: one process, one thread
    other.release()
    assert [p.name for p in (tmp_path / "R" / "smoke").iterdir()] == []    # its own run claim is gone too


def test_bad_jobs_are_named_before_any_work(tmp_path):
    for bad in (0, -2, 1.5):
        with pytest.raises(FairgapError, match=rf"jobs \(processes at once\) {bad!r} is out of range"):
            S.compute(sliced(), results=tmp_path / "R", jobs=bad)
    assert not (tmp_path / "R").exists()


# --------------------------------------------------------------------------- the dry run's packing

def test_makespan_packs_heaviest_chunks_first_and_lets_idle_processes_help():
    def unit(arch, seed, label, method):
        return P.Unit(arch, seed, "class", label, method, {}, {}, Path(f"/r/{arch}/{seed}/{label}.json"), "k", "m",
                      "o", False)
    # chunk a: the original (trained: 10 s of 12) and 4 Retrains of 6 s; chunk b: the original and a method
    a = [(unit("a", 0, "original", "original"), {"original": 10.0, "measure": 2.0})] + [
        (unit("a", 0, f"retrain-r{i}", "retrain"), {"retrain": 5.0, "measure": 1.0}) for i in range(4)]
    b = [(unit("b", 0, "original", "original"), {"original": 3.0, "measure": 1.0}),
         (unit("b", 0, "ft", "ft"), {"ft": 1.0, "measure": 1.0})]
    assert P.makespan(a + b, 1) == 42.0
    # process 1 owns a: original (0-12), then r0 (12-18), r1 (18-24); process 2 owns b (0-6), then helps
    # with a's Retrains from the end: r3 (6-12), r2 (12-18)
    assert P.makespan(a + b, 2) == 24.0
    assert P.makespan(a + b, 3) == 18.0


def test_dry_run_gives_the_parallel_figure_beside_one_process(fixed_rates, tmp_path, monkeypatch):
    monkeypatch.setattr(S, "cores", lambda: 2)
    text = S.dry_run(get_profile("smoke"), results=tmp_path / "r")
    lines = text.splitlines()
    assert lines[-3].startswith("total: 56 missing result files, about") and "at 1 thread per process" in lines[-3]
    assert lines[-2].startswith("2 processes x 1 thread: about ") and lines[-1].startswith("1 process x 2 threads")
    one = S.dry_run(get_profile("smoke"), jobs=1, results=tmp_path / "r").splitlines()
    assert one[-1].startswith("total: 56 missing result files") and "processes" not in one[-1]
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- two runs on one folder

WRITE_LOG = """
import os
log = os.environ.get("FAIRGAP_TEST_WRITE_LOG")
if log:
    from fairgap_utils.computing import artifacts
    _save_json = artifacts.save_json

    def save_json(path, obj):
        _save_json(path, obj)
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {path}\\n")
    artifacts.save_json = save_json
"""

RUN = """
import sys
from test_parallel_compute import sliced
from fairgap_utils.computing import artifacts as A
from fairgap_utils.computing import pipeline as P
from fairgap_utils.computing import stage as S
try:
    S.compute(sliced(), results={results!r}, cache={cache!r}, data_path={data!r}, device="cpu", threads=1)
except KeyboardInterrupt:
    sys.exit(130)
"""


def _start(tmp_path, results, cache, data_path, log=None) -> subprocess.Popen:
    hooks = tmp_path / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(WRITE_LOG)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(hooks), str(REPO), str(REPO / "tests")]),
               FAIRGAP_TEST_WRITE_LOG=str(log or ""), FAIRGAP_PROGRESS="0")
    code = RUN.format(results=str(results), cache=str(cache), data=data_path)
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_computes_on_one_folder_write_each_file_once(data_path, reference, tmp_path):
    results, cache, log = tmp_path / "R", tmp_path / "C", tmp_path / "writes.log"
    runs = [_start(tmp_path, results, cache, data_path, log) for _ in range(2)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], "\n".join(outputs)
    writes = Counter(line.split(" ", 1)[1] for line in log.read_text().splitlines())
    result_writes = {p: n for p, n in writes.items() if p.startswith(str(results))}
    assert sorted(result_writes.values()) == [1] * FILES, result_writes
    checkpoint_logs = [n for p, n in writes.items() if p.startswith(str(cache))]
    assert checkpoint_logs == [1] * len(checkpoint_logs) and len(checkpoint_logs) == 2 + 3   # originals, Retrains
    _assert_same_results(results, reference)
    assert not _leftovers(tmp_path)


def test_ctrl_c_ends_the_processes_keeps_finished_files_and_releases_claims(data_path, reference, tmp_path):
    results, cache = tmp_path / "R", tmp_path / "C"
    run = _start(tmp_path, results, cache, data_path)
    deadline = time.monotonic() + 300
    while not list(results.rglob("*.json")):                    # the first file has landed
        assert run.poll() is None, run.stdout.read()
        assert time.monotonic() < deadline, "no result file appeared"
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGINT)                           # Ctrl-C: the terminal signals the whole group
    out = run.communicate(timeout=120)[0]
    assert run.returncode == 130, out
    kept = _records(results)
    assert 0 < len(kept) < FILES and not _leftovers(tmp_path), out      # no claim or lock left behind
    units = {u.path.relative_to(results): u for u in P.plan(sliced(), results=results)}
    for name, record in kept.items():                                    # whole, current and as computed alone
        assert units[name].present and _measured(record) == _measured(reference[name])
