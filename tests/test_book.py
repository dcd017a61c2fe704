"""End to end: the smoke profile through compute, papermill and `jupyter-book build`.

One build (session fixture, ~3 minutes on 2 cores) on a small subset of the real CIFAR-10
copy when present; the tests then read its HTML like a reader would.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
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


def test_every_figure_and_verdict_names_the_code_that_produced_it(smoke_book):
    """Under every figure of every executed page, later in the same cell, the collapsed block of
    `captions.produced_by`: the function that drew it, the files it read and the commit (issue 24)."""
    for f in sorted((smoke_book / "book").rglob("*.ipynb")):
        for cell in nbformat.read(f, as_version=4).cells:
            outputs = [o.get("data", {}) for o in cell.get("outputs", [])]
            figures = [i for i, d in enumerate(outputs) if "image/png" in d]
            blocks = [i for i, d in enumerate(outputs) if 'class="fairgap-code"' in d.get("text/html", "")]
            if figures:
                assert blocks and blocks[-1] > figures[-1], \
                    f"{f.relative_to(smoke_book)}: a figure without the code that produced it, in\n{cell.source[:300]}"
    html = (smoke_book / "_build" / "html" / "book" / "05_verdicts.html").read_text()
    assert html.count('<details class="fairgap-code">') >= 8   # scorecard, figure, C1-C5, SalUn table, ...
    for function in ("verdicts.all_claims", "verdicts.scorecard", "plots.claim_effects", "verdicts.claim_c1",
                     "verdicts.claim_c5", "verdicts.salun_table"):
        assert f"fairgap_utils.book.{function}</code></a>" in html, function
    assert re.search(r"Read \d+ result files? of the smoke profile, seed 0 \(", html)
    assert re.search(r"Code at git commit <code>([0-9a-f]{7,}( \+ uncommitted changes)?|unknown)</code>", html)


def test_one_page_per_method_in_the_registry(smoke_book):
    for m in runner.page_methods():
        assert (smoke_book / "_build" / "html" / "book" / "methods" / f"{m}.html").exists()


def test_colab_links_point_at_committed_notebooks_on_the_configured_branch(smoke_book):
    repo = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]
    owner_repo = repo["url"].removeprefix("https://github.com/").rstrip("/")
    tracked = set(subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split())
    branch = subprocess.run(["git", "rev-parse", "--abbrev-ref", "HEAD"], cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    for _, dst, _ in runner.notebook_plan():
        text = (smoke_book / "_build" / "html" / dst.replace(".ipynb", ".html")).read_text()
        links = set(re.findall(r'https://colab\.research\.google\.com/github/[^"]+', text))
        assert links == {f"https://colab.research.google.com/github/{owner_repo}/blob/{repo['branch']}/{dst}"}, links
        binder = set(re.findall(r'https://mybinder\.org/v2/gh/[^"]+', text))
        assert binder == {f"https://mybinder.org/v2/gh/{owner_repo}/{repo['branch']}?urlpath=tree/{dst}"}, binder
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


def test_pages_at_once_come_from_the_cores_or_the_variable(monkeypatch):
    monkeypatch.delenv("FAIRGAP_BOOK_JOBS", raising=False)
    assert 1 <= runner.book_jobs() <= 4
    monkeypatch.setenv("FAIRGAP_BOOK_JOBS", "3")
    assert runner.book_jobs() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("FAIRGAP_BOOK_JOBS", bad)
        with pytest.raises(FairgapError, match=f"FAIRGAP_BOOK_JOBS='{bad}' is not a whole number of pages at once"):
            runner.book_jobs()


def test_a_page_whose_kernel_goes_silent_runs_again(tmp_path, monkeypatch):
    """A lost kernel reply (a cell that never returns) costs one attempt, then the page runs again;
    twice in a row and the build stops with one line, leaving book/ as it was.

    The lost reply is nbclient's own CellTimeoutError, raised in place of papermill's first run: a real
    stall with a short cell timeout would make the test race the machine's speed (every cell of the
    next attempt would have to finish within it)."""
    import papermill
    from nbclient.exceptions import CellTimeoutError
    src = tmp_path / "nbs"
    src.mkdir()
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("profile = None\nresults_dir = None\ndata_path = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x = 1")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, src / "stall.ipynb")
    real, calls = papermill.execute_notebook, []

    def silent_once(nb, target, **kw):
        calls.append(Path(target).name)
        if calls.count(Path(target).name) == 1:
            raise CellTimeoutError(f"Cell execution timed out after {kw['execution_timeout']} s")
        return real(nb, target, **kw)
    monkeypatch.setattr(papermill, "execute_notebook", silent_once)
    out = tmp_path / "out"
    plan = [("stall.ipynb", "book/stall.ipynb", {})]
    assert runner.execute("smoke", out, plan=plan, notebooks_dir=src) == [out / "book" / "stall.ipynb"]
    assert len(calls) == 2 and (out / "book" / "stall.ipynb").is_file()
    monkeypatch.setattr(runner, "ATTEMPTS", 1)
    plan = [("stall.ipynb", "book/stall2.ipynb", {})]
    with pytest.raises(FairgapError, match=rf"stall\.ipynb .*no reply from its kernel within {runner.CELL_TIMEOUT_S} s "
                                           r"of a cell, in each of 1 attempts \(CellTimeoutError\)"):
        runner.execute("smoke", out, plan=plan, notebooks_dir=src)
    assert len(calls) == 3 and not (out / "book" / "stall2.ipynb").exists()


# --------------------------------------------------------------------------- rebuilds change nothing

def test_executing_again_gives_the_same_bytes(smoke_book, tmp_path, monkeypatch):
    """Same results in, same notebook bytes out: no timestamps, random ids or paths of this machine."""
    for key, value in dict(FAIRGAP_DATA=str(find_real_data()), FAIRGAP_RESULTS=str(smoke_book / "results"),
                           FAIRGAP_CACHE=str(smoke_book / "cache"), FAIRGAP_PROGRESS="0").items():
        monkeypatch.setenv(key, value)
    # the layer-analysis page has every kind of output: figures, tables, an explorer, an ipywidgets cell
    plan = [p for p in runner.notebook_plan() if p[0] == "03_layer_analysis.ipynb"]
    runner.execute("smoke", tmp_path, plan=plan)
    for _, dst, _ in plan:
        assert (tmp_path / dst).read_bytes() == (smoke_book / dst).read_bytes(), f"{dst} differs between two runs"


def test_executed_notebooks_name_no_path_of_this_machine(smoke_book):
    needles = {str(REPO), str(smoke_book), sys.prefix, str(Path.home())} - {"/", ""}
    notebooks = sorted((smoke_book / "book").rglob("*.ipynb"))
    assert len(notebooks) == len(runner.notebook_plan())
    for f in notebooks:
        text = f.read_text()
        for needle in needles:
            assert needle not in text, f"{f.relative_to(smoke_book)} names {needle}"
        nb = nbformat.reads(text, as_version=4)
        assert not {"papermill", "widgets"} & set(nb.metadata), f"{f.name}: run-specific metadata left"


# --------------------------------------------------------------------------- in a real browser

# interactive figures per page
EXPLORERS = {"book/03_layer_analysis": 1, "book/04_correlation": 2, "book/05_verdicts": 1}


@pytest.fixture(scope="session")
def browser():
    from chromium import Browser, chromium_path
    path = chromium_path(install=True)
    if path is None:
        pytest.skip("no Chromium here and no way to install it (as root with apt-get: apt-get install -y chromium)")
    with Browser(path, width=1200, height=1600) as b:
        yield b


def open_page(browser, html: Path, page: str):
    """A built page, once its explorers have drawn."""
    p = browser.open(html / f"{page}.html")
    n = EXPLORERS.get(page, 0)
    assert p.evaluate("document.querySelectorAll('.fairgap-explorer').length") == n, page
    if n:
        p.wait_for(f"document.querySelectorAll('.fairgap-explorer[data-ready]').length == {n}", timeout=120)
    return p


def plotted(p, i: int) -> list[list[str]]:
    """What explorer i draws: (role, accessible label) of every mark and axis; Vega's labels carry
    the plotted values (`x title: 3; y title: 0.52; label: ft; ...`) and opacities."""
    return p.evaluate(f"""Array.from(document.querySelectorAll('.fairgap-explorer')[{i}]
        .querySelectorAll('svg [aria-label]')).map(e => [e.getAttribute('aria-roledescription'),
        e.getAttribute('aria-label'), e.getAttribute('opacity') || '1'])""")


def set_control(p, i: int, name: str, value=None) -> None:
    """Change a control as a reader does: pick an option of a select, click a radio button or checkbox."""
    ok = p.evaluate(f"""(function () {{
        var root = document.querySelectorAll('.fairgap-explorer')[{i}], value = {json.dumps(value)};
        var select = root.querySelector('select[name="{name}"]');
        if (select) {{
            select.value = value;
            select.dispatchEvent(new Event('change', {{bubbles: true}}));
            return select.value === value;
        }}
        var input = root.querySelector(value === null ? 'input[name="{name}"]' """
                    f""": 'input[name="{name}"][value="' + value + '"]');
        if (!input) return false;
        input.click();
        return true;
    }})()""")
    assert ok, f"explorer {i} has no control {name} = {value}"


# How long a redraw may take before the test fails: the waits return as soon as the drawing is there, so
# the limit costs nothing when all is well; it is generous so that a loaded machine is not a failure.
REDRAW_S = 120


def redrawn(p, i: int, before, timeout: float = REDRAW_S):
    """Wait until explorer i draws something else than `before`; return it."""
    return drawn(p, i, lambda marks: marks != before, timeout, "did not change")


def drawn(p, i: int, condition, timeout: float = REDRAW_S, what: str = "never drew what was expected"):
    """Wait until what explorer i draws satisfies `condition`; return it."""
    end = time.monotonic() + timeout
    while True:
        marks = plotted(p, i)
        if condition(marks):
            return marks
        if time.monotonic() > end:
            raise AssertionError(f"explorer {i} {what}; it draws {[m[1] for m in marks][:8]} ...")
        time.sleep(0.1)


def points(marks, x: str, y: str) -> dict:
    """{(label, seed): (x, y)} of the scatter's points, read from their accessible labels."""
    out = {}
    for role, text, _ in marks:
        if role == "point":
            f = dict(part.split(": ", 1) for part in text.split("; ") if ": " in part)
            out[f["label"], f.get("seed", "")] = (float(f[x].replace("−", "-")), float(f[y].replace("−", "-")))
    return out


def close_to(got: dict, want: dict, rel: float = 2e-3, abs_y: float = 0.08) -> bool:
    return got.keys() == want.keys() and all(
        got[k][0] == pytest.approx(want[k][0], rel=rel) and got[k][1] == pytest.approx(want[k][1], abs=abs_y)
        for k in want)


def values(marks, role: str, label: str, key: str) -> list[float]:
    """The numbers after `key: ` in the marks of a role that belong to a model label."""
    out = []
    for r, text, _ in marks:
        fields = dict(part.split(": ", 1) for part in text.split("; ") if ": " in part)
        if r == role and fields.get("label") == label:
            out.append(float(fields[key].replace("−", "-")))
    return out


def test_pages_load_offline_with_no_console_error(smoke_book, browser):
    html = smoke_book / "_build" / "html"
    for page in toc_files():
        p = open_page(browser, html, page)
        try:
            assert not p.errors, f"{page}: {p.errors}"
            assert not p.external_requests(), f"{page} asked for {p.external_requests()}"
            assert any(u.endswith("/_static/fairgap-vega.js") for u in p.requests) == (page in EXPLORERS), page
        finally:
            p.close()


def test_layer_explorer_controls_redraw_the_figure(smoke_book, browser):
    """Each control changes what is drawn to what the result files say for that choice."""
    from fairgap_utils.book import report
    records = [r for r in report.load_records("smoke", smoke_book / "results") if r["scenario"] == "class"]
    archs = sorted({r["arch"] for r in records})
    y = "ε (feature variance) or log-ratio (no unit)"

    def original(arch, definition, class_set):
        e = report.epsilon_frame([r for r in records if r["arch"] == arch], definition, class_set)
        return list(e[e.label == "original"].groupby("depth").epsilon.mean())
    p = open_page(browser, smoke_book / "_build" / "html", "book/03_layer_analysis")
    try:
        state = {"arch": archs[0], "definition": "channel", "class_set": "all"}
        first = plotted(p, 0)
        assert values(first, "point", "original", y) == pytest.approx(original(**state), rel=2e-3)
        for name, value in (("definition", "pooled"), ("class_set", "retained"), ("arch", archs[1])):
            set_control(p, 0, name, value)
            state[name] = value
            want = original(**state)
            marks = drawn(p, 0, lambda m: values(m, "point", "original", y) == pytest.approx(want, rel=2e-3))
        assert marks != first and len(values(marks, "point", "original", y)) == len(records_layers(records, archs[1]))
        set_control(p, 0, "quantity", "own")          # log(ε / ε of the own original): 0 for the original
        drawn(p, 0, lambda m: values(m, "point", "original", y) == [0.0] * len(records_layers(records, archs[1])))
        set_control(p, 0, "band")                      # the ±1 std band: with one seed there is none to draw
        p.evaluate("1")
        assert not p.errors, p.errors
    finally:
        p.close()


def records_layers(records, arch) -> list[dict]:
    return next(r for r in records if r["arch"] == arch)["fairness"]


def test_correlation_explorer_draws_the_choice_and_its_rho(smoke_book, browser):
    """Each control redraws the points of that choice (ε, accuracy or drop), and the line above the
    plot gives the ρ that `explorer.correlation_table` computes for it."""
    from fairgap_utils.book import explorer, report
    records = report.load_records("smoke", smoke_book / "results")
    arch = sorted({r["arch"] for r in records})[0]
    models = explorer.layer_choices(records).merge(explorer.attack_columns(records), on=["arch", "seed", "label"])
    models = models[models.arch == arch]

    def expected(layer, definition, class_set, attack, eps, outcome):
        acc = models[f"{attack}_{eps}"]
        y = acc if outcome == "acc" else models["clean"] - acc
        return {(lbl, str(seed)): (x, v) for lbl, seed, x, v in
                zip(models.label, models.seed, models[f"{layer}_{definition}_{class_set}"], y)}
    xy = ("ε", "y")
    p = open_page(browser, smoke_book / "_build" / "html", "book/04_correlation")
    try:
        eps = sorted(c.split("_")[1] for c in models.columns if c.startswith("fgsm_"))
        state = dict(layer="all", definition="channel", class_set="all", attack="fgsm", eps=eps[0], outcome="acc")
        assert close_to(points(plotted(p, 0), *xy), expected(**state))
        first = expected(**state)
        for name, value in (("layer", "last"), ("definition", "sample"), ("class_set", "retained"), ("eps", "8"),
                            ("attack", "pgd"), ("outcome", "drop")):
            set_control(p, 0, name, value)
            state[name] = value
            want = expected(**state)
            marks = drawn(p, 0, lambda m: close_to(points(m, *xy), want))
        assert not close_to(first, want), "the choices above should change the plotted data"
        row = explorer.correlation_table(records).set_index(["arch", "layer"]).loc[(arch, "last")]
        col = "sample_retained_drop_pgd_8"

        def signed(v):
            return f"{v:+.2f}".replace("-", "−")
        text = f"text: Spearman ρ within seed (mean over seeds): {signed(row['within_' + col])} · " \
               f"pooled over {int(row['n_' + col])} models: {signed(row['pooled_' + col])}"
        assert text in [m[1] for m in marks], [m[1] for m in marks if "ρ" in m[1]]
        set_control(p, 0, "eps", eps[0])              # the smoke profile runs PGD at 8/255 only
        marks = drawn(p, 0, lambda m: any("no run of this attack at this ε" in t for _, t, _ in m))
        assert not points(marks, *xy)
    finally:
        p.close()


def test_clicking_a_method_in_the_legend_shows_it_alone(smoke_book, browser):
    p = open_page(browser, smoke_book / "_build" / "html", "book/04_correlation")
    try:
        box = p.evaluate("""(function () {
            var root = document.querySelectorAll('.fairgap-explorer')[1];
            var text = Array.from(root.querySelectorAll('[aria-roledescription=legend] text'))
                .find(t => t.textContent === 'retrain');
            text.scrollIntoView({block: 'center'});
            var r = text.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2];
        })()""")
        before = plotted(p, 1)
        p.click(*box)
        after = redrawn(p, 1, before)
        lines = [(label, float(opacity)) for role, label, opacity in after if role == "line mark"]
        shown = {label.split("label: ")[1].split(";")[0] for label, o in lines if o > 0.5}
        assert shown == {"retrain"}, shown
    finally:
        p.close()
