"""End to end: the smoke profile through compute, papermill and `jupyter-book build`.

One build (session fixture, ~3 minutes on 2 cores) on a small subset of the real CIFAR-10
copy when present; the tests then read its HTML like a reader would.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import find_real_data
from fairgap_utils.book import runner
from fairgap_utils.errors import FairgapError

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def toc_files() -> list[str]:
    """Every page of _toc.yml, globs expanded against the runner's plan."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    planned = [dst.removesuffix(".ipynb") for _, dst, _ in runner.notebook_plan()]
    files = [toc["root"]]

    def walk(entries):
        for e in entries:
            if "file" in e:
                files.append(e["file"])
            if "glob" in e:
                pattern = re.compile(e["glob"].replace("*", "[^/]+") + "$")
                files.extend(p for p in planned if pattern.match(p))
            walk(e.get("sections", []))
    for part in toc["parts"]:
        walk(part["chapters"])
    return files


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory):
    data = find_real_data()
    if data is None:
        pytest.skip("no local CIFAR-10 copy (set FAIRGAP_DATA); the e2e build needs real images")
    out = tmp_path_factory.mktemp("book")
    env = dict(os.environ, FAIRGAP_DATA=str(data), FAIRGAP_RESULTS=str(out / "results"),
               FAIRGAP_CACHE=str(out / "cache"), FAIRGAP_PROGRESS="0")
    proc = subprocess.run([sys.executable, "-m", "fairgap_utils", "run", "--profile", "smoke", "--out", str(out)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_every_toc_page_is_built_with_its_figures(smoke_book):
    html = smoke_book / "_build" / "html"
    pages = toc_files()
    assert len(pages) >= 6 + len(runner.page_methods())
    for page in pages:
        f = html / f"{page}.html"
        assert f.exists(), f"{page} missing from the HTML"
        if (smoke_book / f"{page}.ipynb").exists():
            text = f.read_text()
            if page != "book/00_intro":  # the introduction has tables only
                assert text.count('src="../_images/') + text.count('src="../../_images/') >= 1, f"{page} has no figure"
            assert "Traceback (most recent call last)" not in text
            assert "Smoke profile" in text  # the banner says what produced the numbers
            assert "Provenance" in text


def test_one_page_per_method_in_the_registry(smoke_book):
    for m in runner.page_methods():
        assert (smoke_book / "_build" / "html" / "book" / "methods" / f"{m}.html").exists()


def test_colab_links_point_at_committed_notebooks_on_the_configured_branch(smoke_book):
    repo = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]
    owner_repo = repo["url"].removeprefix("https://github.com/").rstrip("/")
    tracked = set(subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split())
    branch = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    for _, dst, _ in runner.notebook_plan():
        text = (smoke_book / "_build" / "html" / dst.replace(".ipynb", ".html")).read_text()
        links = set(re.findall(r'https://colab\.research\.google\.com/github/[^"]+', text))
        assert links == {f"https://colab.research.google.com/github/{owner_repo}/blob/{repo['branch']}/{dst}"}, links
        if tracked:  # in a git checkout: the link's target must be committed, on the branch the book names
            assert dst in tracked, f"{dst} is linked from Colab but not committed"
            if branch != "HEAD":
                assert branch == repo["branch"], f"_config.yml names branch {repo['branch']!r}, checkout is {branch!r}"


def test_parameter_and_install_cells_are_collapsed_and_point_at_the_repository(smoke_book):
    repo = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]
    nb = nbformat.read(smoke_book / "book" / "methods" / "ft.ipynb", as_version=4)
    tagged = {t: c for c in nb.cells for t in c.metadata.get("tags", [])}
    for tag in ("parameters", "injected-parameters", "install"):
        assert "hide-cell" in tagged[tag].metadata["tags"]
    assert f'REPOSITORY_URL = "{repo["url"]}"' in tagged["install"].source
    assert "method = \"ft\"" in tagged["injected-parameters"].source


def test_build_has_no_warnings(smoke_book):
    # runner.build runs jupyter-book with -W (warnings are errors); the build above passed, so rebuild
    # the same tree and check the log is clean as well
    html = runner.build(smoke_book)
    assert (html / "index.html").exists()


def test_bad_profile_fails_fast_with_the_choices(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fairgap_utils", "run", "--profile", "papr", "--out", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "unknown profile 'papr'; valid choices: smoke, cpu, paper" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "book").exists()


def test_failing_notebook_is_named_and_leaves_the_book_unchanged(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    good, bad = nbformat.v4.new_notebook(), nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("profile = None\nresults_dir = None\ndata_path = None")
    params.metadata["tags"] = ["parameters"]
    good.cells = [params, nbformat.v4.new_code_cell("x = 1")]
    bad.cells = [params, nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise RuntimeError('boom')")]
    for nb, name in ((good, "good.ipynb"), (bad, "bad.ipynb")):
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, src / name)
    out = tmp_path / "out"
    (out / "book").mkdir(parents=True)
    (out / "book" / "good.ipynb").write_text("previous")
    plan = [("good.ipynb", "book/good.ipynb", {}), ("bad.ipynb", "book/bad.ipynb", {})]
    with pytest.raises(FairgapError, match=r"notebook bad\.ipynb .* failed in cell 3 .*RuntimeError: boom"):
        runner.execute("smoke", out, plan=plan, notebooks_dir=src)
    assert (out / "book" / "good.ipynb").read_text() == "previous"   # nothing swapped in
    assert not (out / "book" / "bad.ipynb").exists()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_page_renders_in_headless_chromium(smoke_book, tmp_path):
    page = smoke_book / "_build" / "html" / "book" / "01_baseline.html"
    shot = tmp_path / "page.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'u'}",
                    f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000
    dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          f"--user-data-dir={tmp_path / 'u2'}", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    assert "Baseline" in dom and "<img" in dom
