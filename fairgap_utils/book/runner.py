"""Execute the notebooks with papermill into `book/`, then build the Jupyter Book.

    python -m fairgap_utils run --profile cpu

Order: validate every parameter -> compute missing results (progress bars) -> execute the
notebooks into a staging folder, one page per core at once -> only if all succeeded, replace
the executed notebooks in `<out>/book/` -> `jupyter-book build`. A failing notebook is named with its
cell, the run exits non-zero and the previous book stays as it was.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import yaml

from ..config import get_profile
from ..errors import FairgapError, check_choice
from ..files import REPO_ROOT
from .sources import coverage, default_profile, shown_path

HIDDEN_TAGS = {"parameters", "injected-parameters", "install"}
BOOK_FILES = ("_config.yml", "_toc.yml", "book/references.bib", "book/references.md", "book/02_methods.md",
              "book/analysis_plan.md")


def page_methods() -> list[str]:
    """Methods that get their own page (all but Retrain, the reference every page shows)."""
    from ..unlearn import METHODS  # lazy: the registry (torch) only to list the method pages
    return [m for m in METHODS if m != "retrain"]


def notebook_plan() -> list[tuple[str, str, dict]]:
    """(source notebook, executed path under the book root, parameters) in reading order."""
    plan = [("00_intro.ipynb", "book/00_intro.ipynb", {}), ("01_baseline.ipynb", "book/01_baseline.ipynb", {})]
    plan += [("02_unlearning_method.ipynb", f"book/methods/{m}.ipynb", {"method": m}) for m in page_methods()]
    plan += [(f, f"book/{f}", {}) for f in ("03_layer_analysis.ipynb", "04_correlation.ipynb", "05_verdicts.ipynb",
                                            "06_your_method.ipynb")]
    return plan


def repository() -> dict:
    cfg = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    return cfg["repository"]


def _fill_repository(nb, repo: dict) -> None:
    """Point the install cell at the repository and branch named in _config.yml."""
    for cell in nb.cells:
        if "install" in cell.metadata.get("tags", []):
            lines = cell.source.splitlines()
            for i, line in enumerate(lines):
                if line.startswith("REPOSITORY_URL ="):
                    lines[i] = f'REPOSITORY_URL = "{repo["url"]}"'
                elif line.startswith("BRANCH ="):
                    lines[i] = f'BRANCH = "{repo.get("branch", "main")}"'
            cell.source = "\n".join(lines)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _tidy(path: Path) -> None:
    """Collapse the parameter and install cells in the HTML (tag hide-cell), and keep only what the
    notebook's code and results decide, so that executing it again with the same results gives the
    same bytes: no papermill metadata (times, this machine's absolute paths), no cell timings, no
    Python patch version, a fixed id for papermill's injected cell (a fresh random one per run
    otherwise), and no ipywidgets models (random ids; a widget needs a live kernel anyway, and its
    saved state would make the HTML page load the widget JavaScript from a CDN)."""
    # lazy: the notebook stack only when notebooks are written or executed
    import nbformat
    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    nb.metadata.get("language_info", {}).pop("version", None)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if HIDDEN_TAGS & set(tags) and "hide-cell" not in tags:
            tags.append("hide-cell")
        if "injected-parameters" in tags:
            cell.id = "injected-parameters"
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    nbformat.write(nb, path)


# Every cell of a page is light (results are computed before the notebooks run; the tutorial page's
# method takes a few minutes at most), but a kernel reply lost between ipykernel and papermill leaves
# a cell waiting forever with an idle kernel: seen here on a loaded 2-core machine. So a cell gets
# CELL_TIMEOUT_S, and a page whose kernel went silent is executed again, ATTEMPTS times in all.
CELL_TIMEOUT_S = 900
ATTEMPTS = 2


def book_jobs() -> int:
    """Pages executed at once: each is one mostly single-threaded kernel (imports, tables, figures), so one
    per core, at most 4; $FAIRGAP_BOOK_JOBS overrides it (1: one page after the other)."""
    value = os.environ.get("FAIRGAP_BOOK_JOBS")
    if value is not None:
        if not value.isdigit() or int(value) < 1:
            raise FairgapError(f"FAIRGAP_BOOK_JOBS={value!r} is not a whole number of pages at once (1 or more)")
        return int(value)
    return max(1, min(4, os.cpu_count() or 1))


def _execute_page(nb, target: Path, kernel: str, parameters: dict) -> str | None:
    """One page through papermill, run again after a lost kernel reply; returns a note on a retry."""
    import papermill as pm  # lazy: the notebook stack only when notebooks are executed
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    note = None
    for attempt in range(1, ATTEMPTS + 1):
        try:
            pm.execute_notebook(nb, str(target), kernel_name=kernel, progress_bar=False, cwd=str(REPO_ROOT),
                                execution_timeout=CELL_TIMEOUT_S, start_timeout=120, parameters=parameters)
            return note
        except (CellTimeoutError, DeadKernelError) as e:  # a lost kernel reply hangs a cell forever
            if attempt == ATTEMPTS:
                raise
            note = f"no kernel reply in {CELL_TIMEOUT_S} s: {type(e).__name__}; ran it again"


def execute(profile: str, out: Path, results_dir=None, data_path=None, kernel: str = "python3",
            plan=None, notebooks_dir=None, jobs: int | None = None) -> list[Path]:
    """Run every notebook of the plan into `out/book/`, `jobs` pages at once (default `book_jobs()`),
    all or nothing: the first failure stops the pages not yet started, and book/ stays as it was."""
    # lazy: the notebook stack only when notebooks are written or executed
    import nbformat
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError
    staging = out / "_build" / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    repo = repository()
    env_before = {k: os.environ.get(k) for k in ("FAIRGAP_PROGRESS", "FAIRGAP_BOOK_BUILD")}
    os.environ.update(FAIRGAP_PROGRESS="0", FAIRGAP_BOOK_BUILD="1")  # the kernels inherit them
    src_dir = Path(notebooks_dir or REPO_ROOT / "notebooks")
    plan = plan or notebook_plan()
    jobs = jobs or book_jobs()
    if len(plan) > 1:
        print(f"executing {len(plan)} pages, {min(jobs, len(plan))} at once", flush=True)

    def page(src, dst, params):
        nb = nbformat.read(src_dir / src, as_version=4)
        _fill_repository(nb, repo)
        if "method" in params:  # the template's page gets the method's name as its title
            from ..unlearn import METHODS  # lazy: the registry (torch) only to list the method pages
            first = nb.cells[0]
            first.source = f"# {METHODS[params['method']].title}" + first.source[first.source.index("\n"):]
        target = staging / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        parameters = {"profile": profile, "results_dir": str(results_dir) if results_dir else None,
                      "data_path": str(data_path) if data_path else None, **params}
        note = _execute_page(nb, target, kernel, parameters)
        _tidy(target)
        return time.perf_counter() - start, note

    def failure(src, dst, e) -> FairgapError:
        if isinstance(e, PapermillExecutionError):
            return FairgapError(f"notebook {src} (as {dst}) failed in cell {e.cell_index} "
                                f"(execution count {e.exec_count}): {e.ename}: {e.evalue}. "
                                f"The failed copy is {staging / dst}; book/ was left unchanged.")
        if isinstance(e, (CellTimeoutError, DeadKernelError)):
            return FairgapError(f"notebook {src} (as {dst}): no reply from its kernel within "
                                f"{CELL_TIMEOUT_S} s of a cell, in each of {ATTEMPTS} attempts ({type(e).__name__}); "
                                "book/ was left unchanged.")
        return e

    done, error = 0, None
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="page")
    try:
        # the pages that read every result (the verdicts, the correlations, ...) start first, the method pages
        # (one method's results each) fill in behind them: the last page to finish is a short one
        futures = {pool.submit(page, *entry): entry for entry in sorted(plan, key=lambda e: "method" in e[2])}
        pending = set(futures)
        while pending and error is None:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(finished, key=lambda f: plan.index(futures[f])):
                src, dst, _ = futures[future]
                if future.exception() is not None:
                    error = error or failure(src, dst, future.exception())
                    continue
                seconds, note = future.result()
                done += 1
                print(f"[{done}/{len(plan)}] {dst}: {seconds:.0f} s" + (f" ({note})" if note else ""),
                      flush=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)   # a failure: pages not yet started never start
        for key, value in env_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if error is not None:
        raise error from None
    # every notebook succeeded: swap them in
    for _, dst, _ in plan:
        (out / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staging / dst, out / dst)
    shutil.rmtree(staging, ignore_errors=True)
    return [out / dst for _, dst, _ in plan]


def build(out: Path) -> Path:
    """`jupyter-book build` of the book rooted at `out` (warnings are errors); returns the HTML folder."""
    out = Path(out)
    if not out.is_dir():
        raise FairgapError(f"book folder {str(out)!r} does not exist; give the --out of an earlier `run` "
                           f"(it holds the executed notebooks under book/), or leave --out out for the repository")
    missing = [dst for _, dst, _ in notebook_plan() if not (out / dst).is_file()]
    if missing:
        raise FairgapError(f"book folder {str(out)!r} has no executed notebook {missing[0]} "
                           f"({len(missing)} missing); run `python -m fairgap_utils run --out {out}` first")
    if out.resolve() != REPO_ROOT.resolve():
        for f in BOOK_FILES:
            (out / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(REPO_ROOT / f, out / f)
    html = out / "_build" / "html"
    shutil.rmtree(html, ignore_errors=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", str(out), "-W", "-n", "--keep-going", "-q"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(html, ignore_errors=True)
        raise FairgapError(f"jupyter-book build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return html


def compute_from_environment() -> bool | None:
    """FAIRGAP_COMPUTE=0: build from the result files present, computing nothing (the publishing workflow sets it,
    so that `make book` there never computes the missing seeds of a profile in progress); 1: compute what is
    missing; unset or empty: the default of `run`."""
    value = os.environ.get("FAIRGAP_COMPUTE", "")
    check_choice("FAIRGAP_COMPUTE", value, ("", "0", "1"))
    return None if value == "" else value == "1"


def run(profile: str | None = None, out=None, results_dir=None, data_path=None,
        compute_missing: bool | None = None, jobs: int | None = None) -> Path:
    """The main job: compute what is missing, execute the notebooks, build the book. Returns the HTML folder.

    profile None: `sources.default_profile` (paper when results/paper holds result files, else paper
    on CUDA, else cpu). compute_missing None: compute, except a GPU profile (paper) on a machine
    without CUDA, whose book is rebuilt from the committed results, computing nothing (never the cpu
    profile instead); False: compute nothing. jobs: `stage.compute`'s processes (None: its default,
    one per core on a CPU).
    """
    # lazy: computing the results needs torch and the machinery; building from them does not
    import torch

    from ..computing.pipeline import GPU_PROFILES, write_manifest
    from ..computing.stage import compute
    p = get_profile(profile or default_profile(results_dir))   # validates before any work
    out = Path(out or REPO_ROOT)
    start = time.perf_counter()
    print(f"fairgap: profile {p.name} ({p.description})", flush=True)
    if compute_missing is None:
        compute_missing = compute_from_environment()
    if compute_missing is None:
        compute_missing = p.name not in GPU_PROFILES or torch.cuda.is_available()
    if compute_missing:
        compute(p, results=results_dir, data_path=data_path, jobs=jobs)
        print(f"computed in {time.perf_counter() - start:.0f} s; executing notebooks", flush=True)
    else:
        held = coverage(p, results_dir)
        if not held.files:
            raise FairgapError(f"no result files of the {p.name} profile under {shown_path(held.folder)} to build "
                               f"its book from, and nothing is computed here"
                               + (" (no CUDA)" if p.name in GPU_PROFILES else "")
                               + f"; compute them first (`python -m fairgap_utils compute --profile {p.name}`)")
        why = "no CUDA here" if p.name in GPU_PROFILES and not torch.cuda.is_available() else "asked not to compute"
        print(f"{why}: the book is built from the result files present, computing nothing. {held.sentence()}",
              flush=True)
    write_manifest(p, results_dir)   # the plan the pages read without torch (results/<profile>/plan.json)
    execute(p.name, out, results_dir, data_path)
    html = build(out)
    print(f"book built in {time.perf_counter() - start:.0f} s total: {html / 'index.html'}", flush=True)
    return html
