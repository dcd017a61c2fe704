"""The command line: a bad value gives one line naming it (exit 2), never a deep traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def cli(*args, tmp_path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "FAIRGAP_RESULTS": str(tmp_path / "results"),
           "FAIRGAP_CACHE": str(tmp_path / "cache"), "FAIRGAP_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "fairgap_utils", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("args, expected", [
    (["compute", "--profile", "smoke", "--seeds", "-1"], "error: seed -1 is out of range"),
    (["compute", "--profile", "smoke", "--jobs", "0"], "error: jobs (processes at once) 0 is out of range"),
    (["compute", "--profile", "smoke", "--jobs", "-3", "--dry-run"], "error: jobs (processes at once) -3 is out"),
    (["run", "--profile", "smoke", "--jobs", "0"], "error: jobs (processes at once) 0 is out of range"),
    (["book", "--out", "{tmp}/no-such-folder"], "error: book folder '{tmp}/no-such-folder' does not exist"),
    (["book", "--out", "{tmp}"], "error: book folder '{tmp}' has no executed notebook book/00_intro.ipynb"),
])
def test_bad_values_are_one_line(args, expected, tmp_path):
    proc = cli(*(a.format(tmp=tmp_path) for a in args), tmp_path=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected.format(tmp=tmp_path)), proc.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "no-such-folder").exists()
