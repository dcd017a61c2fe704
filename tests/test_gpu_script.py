"""benchmarks/gpu_chunk.sh and gpu_chunk.py: the one command a GPU session runs, rehearsed on the CPU.

The rehearsal runs the smoke profile where the GPU session runs the paper profile, with $OUT
a temporary folder; it checks what comes back (log, summary, a results archive that unpacks
at the repository root) and that a command out of time stops cleanly.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from conftest import REPO, write_pattern_npz
from fairgap_utils.computing import pipeline as P
from fairgap_utils.config import get_profile
from fairgap_utils.errors import FairgapError


def _driver():
    spec = importlib.util.spec_from_file_location("gpu_chunk", REPO / "benchmarks" / "gpu_chunk.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chunk_order_follows_the_issues():
    g = _driver()
    chunks = [g.parse_chunk(c) for c in g.ORDER]
    assert chunks[:2] == [("resnet50", "class", 0, False), ("vit_small", "class", 0, False)]        # (a), (b)
    core = [c[:3] for c in chunks if not c[3]]
    assert core[2:5] == [("resnet50", "random", 0), ("vit_small", "random", 0), ("resnet18", "random", 0)]
    assert core[5:9] == [("resnet50", "class", 1), ("resnet50", "class", 2), ("vit_small", "class", 1),
                         ("vit_small", "class", 2)]                                  # issue 8: seeds 1 and 2
    paper = get_profile("paper")
    every = {(a, s, seed) for a in paper.archs for s in paper.scenarios for seed in (0, 1, 2)}
    assert set(core) == every and len(core) == len(every)
    assert {c[:3] for c in chunks if c[3]} == {(a, s, 0) for a in paper.archs for s in paper.scenarios}


@pytest.mark.parametrize("spec", ["resnet50:class", "resnet50:class:x", "resnet99:class:0", "resnet50:half:0",
                                  "resnet50:class:0:more"])
def test_bad_chunk(spec):
    with pytest.raises(FairgapError, match="chunk|architecture|scenario"):
        _driver().parse_chunk(spec)


def _rehearse(out: Path, minutes: str, *extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, OUT=str(out), PY=sys.executable, PYTHONPATH=str(REPO))
    return subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_chunk.sh"), minutes, "--device", "cpu",
                           "--profile", "smoke", *extra], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.e2e
def test_gpu_script_rehearsal_on_the_cpu(tmp_path):
    data = write_pattern_npz(tmp_path / "cifar10.npz", 67, 30)
    common = ["--data", str(data), "--results", str(tmp_path / "results"), "--cache", str(tmp_path / "cache"),
              "--chunks", "resnet_tiny:class:0:replicates", "vit_micro:random:1:replicates"]
    # out of time before the first unit: a clean stop, nothing half-written
    late = _rehearse(tmp_path / "late", "0.3", "--no-selfcheck", *common)
    assert late.returncode == 0, late.stdout + late.stderr
    summary = (tmp_path / "late" / "summary.txt").read_text()
    assert "resnet_tiny:class:0:replicates" in summary and ("stopped for the budget" in summary
                                                            or "not started" in summary)
    assert not list((tmp_path / "results").rglob("*.json"))
    # a session with time: self-check, the chunk, the archive
    run = _rehearse(tmp_path / "out", "8", *common, "--selfcheck-archs", "resnet_tiny", "--selfcheck-methods", "ga",
                    "--throughput-archs", "resnet_tiny", "--throughput-batch", "16", "--throughput-steps", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    log = (tmp_path / "out" / "gpu_chunk.log").read_text()
    assert "dependencies: all present" in log and "self-check: smoke profile, resnet_tiny" in log
    assert "numbers in range" in log and "resnet_tiny fit" in log
    assert "[smoke resnet_tiny seed 0 class retrain-r1] Retrain training" in log
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert "resnet_tiny:class:0:replicates   complete" in summary and "3 written, 0 left" in summary
    assert "vit_micro:random:1:replicates    nothing to do" in summary
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["gpu_chunk.log", "results-smoke.tar.gz",
                                                                   "summary.txt"]
    with tarfile.open(tmp_path / "out" / "results-smoke.tar.gz") as tar:
        tar.extractall(tmp_path / "clone", filter="data")
    units = P.plan(get_profile("smoke"), archs=["resnet_tiny"], scenarios=["class"], methods=["retrain"],
                   results=tmp_path / "clone" / "results")
    assert [u.label for u in units] == ["original", "retrain", "retrain-r1"] and all(u.present for u in units)
    # the next session finds the chunk complete and computes nothing
    again = _rehearse(tmp_path / "again", "2", "--no-selfcheck", *common)
    assert again.returncode == 0 and "resnet_tiny:class:0:replicates   complete                 3 files" in \
        (tmp_path / "again" / "summary.txt").read_text()


@pytest.mark.e2e
def test_gpu_script_refuses_cuda_without_a_gpu(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    run = _rehearse(tmp_path / "out", "1", "--device", "cuda")
    assert run.returncode == 2 and "no CUDA device here" in run.stdout
