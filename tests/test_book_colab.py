"""End to end: a partial profile's book, and the notebooks run the way Colab runs them.

Smoke results of one chunk (resnet_tiny, class-wise, seed 0, taken from the session's smoke book)
stand in for a partial paper profile. The book built from them computes nothing and says what exists
and what is missing.
Then, as on Colab: a fresh virtual environment outside the repository, with the packages Colab
preinstalls (torch, pandas, matplotlib, scikit-learn, jupyter: seen from this test's environment
through a .pth file, without fairgap itself), runs the notebooks from another working folder.
Their first cell clones a repository (a local snapshot of this working tree, committed results
included, instead of GitHub) and installs the package from the clone with pip; the pages then read
the committed results and compute nothing; asked for one slice, a page prints its estimate and
computes exactly that slice into results-local/.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import find_real_data
from fairgap_utils.book import runner

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e
SLICE = "resnet_tiny/seed0/class"


@pytest.fixture(scope="module")
def data():
    path = find_real_data()
    if path is None:
        pytest.skip("no local CIFAR-10 copy (set FAIRGAP_DATA); the e2e tests need real images")
    return path


def clean_env(**extra) -> dict:
    """The environment without this worktree's overrides (PYTHONPATH, results and cache folders)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "FAIRGAP_RESULTS", "FAIRGAP_CACHE", "FAIRGAP_LOCAL_RESULTS", "FAIRGAP_PROGRESS")}
    return env | extra


@pytest.fixture(scope="module")
def partial(tmp_path_factory, smoke_book):
    """results/smoke holding one chunk of the smoke profile (15 of its 56 result files): the class-wise
    resnet_tiny seed-0 chunk of the session's smoke book, with the checkpoints, and the tutorial page's
    results (results/tutorial, as a repository commits them)."""
    root = tmp_path_factory.mktemp("partial")
    chunk = Path("smoke", *SLICE.split("/"))
    shutil.copytree(smoke_book / "results" / chunk, root / "results" / chunk)
    shutil.copytree(smoke_book / "results" / "tutorial", root / "results" / "tutorial")
    shutil.copytree(smoke_book / "cache", root / "cache")
    assert len(list((root / "results" / "smoke").rglob("*.json"))) == 15
    return root


# --------------------------------------------------------------------------- the partial profile's book

def test_a_partial_profile_builds_every_page_computing_nothing(partial, data, tmp_path):
    before = sorted(p.relative_to(partial) for p in (partial / "results").rglob("*.json"))
    out = tmp_path / "book"
    env = clean_env(FAIRGAP_DATA=str(data), FAIRGAP_CACHE=str(partial / "cache"), FAIRGAP_PROGRESS="0")
    proc = subprocess.run([sys.executable, "-m", "fairgap_utils", "run", "--profile", "smoke", "--no-compute",
                           "--results", str(partial / "results"), "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=2400)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "computing nothing" in proc.stdout and "holds 15 of its 56 result files" in proc.stdout
    html = out / "_build" / "html"
    missing = "resnet_tiny random seed 0 (13 of 13 missing), vit_micro class seed 0 (15 of 15 missing)"
    for _, dst, _ in runner.notebook_plan():
        text = (html / dst.replace(".ipynb", ".html")).read_text()
        assert "Traceback (most recent call last)" not in text, dst
        if dst != "book/06_your_method.ipynb":
            assert "holds 15 of its 56 result files" in text and missing in text, dst   # the banner
            assert "chunks missing" in text, dst                                          # the provenance box
    verdicts = (html / "book" / "05_verdicts.html").read_text()
    assert "What these verdicts rest on." in verdicts and "the missing chunks have no verdict yet" in verdicts
    after = sorted(p.relative_to(partial) for p in (partial / "results").rglob("*.json")
                   if p.name != "plan.json")          # the plan the pages read (written by the runner), no result
    assert after == before                            # nothing computed, the tutorial page's method included
    assert sorted(p.name for p in after if p.parts[1] == "tutorial") == ["ft_entropy.json", "original.json"]


# --------------------------------------------------------------------------- Colab

def snapshot_remote(dst: Path, results: Path) -> str:
    """A git repository holding this working tree (tracked and untracked, not ignored files) on the
    branch _config.yml names, with `results` as its committed results/smoke; returns its file:// URL."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           text=True)
    if files.returncode != 0:
        pytest.skip("not a git checkout: the Colab test clones a snapshot of this working tree")
    for name in filter(None, files.stdout.split("\0")):
        if (REPO / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dst / name)
    shutil.copytree(results / "smoke", dst / "results" / "smoke")
    branch = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]["branch"]
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "-c", "init.defaultBranch=" + branch]
    for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "snapshot"]):
        subprocess.run(git + cmd, cwd=dst, check=True, capture_output=True)
    return dst.resolve().as_uri()


def colab_like_venv(root: Path) -> Path:
    """A fresh venv that sees this environment's packages (Colab's preinstalled ones) but not fairgap."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    view = root / "preinstalled"
    view.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(("fairgap", "__editable__", "_fairgap")) or entry.suffix == ".pth":
            continue
        (view / entry.name).symlink_to(entry)
    python = root / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "preinstalled.pth").write_text(f"{view}\n")
    return python


def run_page(python, src, work, repo_url, params, env, name):
    nb = nbformat.read(REPO / "notebooks" / src, as_version=4)
    runner._fill_repository(nb, {"url": repo_url, "branch": yaml.safe_load((REPO / "_config.yml").read_text())[
        "repository"]["branch"]})
    nbformat.write(nb, work / f"{name}-in.ipynb")
    proc = subprocess.run([str(python), "-m", "papermill", f"{name}-in.ipynb", f"{name}.ipynb", "-y",
                           json.dumps(params), "-k", "python3", "--no-progress-bar"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"{name}: {proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    out = nbformat.read(work / f"{name}.ipynb", as_version=4)
    return "\n".join(o.get("text") or "".join(o.get("data", {}).get("text/markdown", "")) + "".join(
        o.get("data", {}).get("text/plain", "")) for c in out.cells if c.cell_type == "code" for o in c.outputs)


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and ".git" not in p.parts
            and "__pycache__" not in p.parts and ".egg-info" not in str(p)}


def test_colab_pages_read_the_committed_results_and_recompute_one_slice(partial, data, tmp_path):
    remote = snapshot_remote(tmp_path / "remote", partial / "results")
    python = colab_like_venv(tmp_path / "venv")
    work = tmp_path / "content"                     # Colab's working folder
    work.mkdir()
    env = clean_env(FAIRGAP_DATA=str(data), COLAB_RELEASE_TAG="simulated", PIP_NO_INDEX="1",
                    PIP_NO_BUILD_ISOLATION="0", HOME=str(tmp_path / "home"))
    assert subprocess.run([str(python), "-c", "import fairgap_utils"], cwd=work, env=env,
                          capture_output=True).returncode != 0, "the fresh environment already has fairgap_utils"
    clone = work / "fairgap"
    pages = [("00_intro.ipynb", {}, "intro"), ("02_unlearning_method.ipynb", {"method": "ft"}, "ft"),
             ("05_verdicts.ipynb", {}, "verdicts")]
    for i, (src, params, name) in enumerate(pages):
        text = run_page(python, src, work, remote, params, env, name)
        if i == 0:
            assert clone.is_dir(), "the first cell did not clone the repository"
            files = tree(clone)
        assert "Colab CPU runtime: this page shows the committed results" in text, name
        assert "Shown: the committed results in `results/" in text, name
        assert tree(clone) == files, f"{name} wrote files: {tree(clone) ^ files}"   # no result, no checkpoint
    assert not (clone / "results-local").exists() and not (clone / "cache").exists()
    # a recomputation of one slice: the estimate first, then exactly that slice, beside the committed results
    text = run_page(python, "02_unlearning_method.ipynb", work, remote,
                    {"profile": "smoke", "method": "ft", "recompute": True, "arch": "resnet_tiny", "seed": 0,
                     "scenario": "class"}, env, "ft-slice")
    new = tree(clone) - files
    assert {f for f in new if f.startswith("results")} == {f"results-local/smoke/{SLICE}/{m}.json"
                                                           for m in ("original", "retrain", "ft")}
    assert {Path(f).parts[0] for f in new} == {"results-local", "cache"}
    plan = text.index("Recompute: the smoke profile's slice resnet_tiny class seed 0, 3 models (original, retrain, ft)")
    estimate = text.index("resnet_tiny class seed 0: 3 missing, about")
    computed = text.index("[smoke resnet_tiny seed 0 class original]")
    assert plan < estimate < computed
    assert "merged with 3 files recomputed here (`results-local/smoke`: resnet_tiny class seed 0: ft, original, " \
           "retrain), which replace the 3 committed files of the same models" in text
    assert subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True).stdout == ""
