"""What a page shows (committed, recomputed or merged results), what a profile holds, a reader's
recomputed slice, the tutorial page's committed method, the book's default profile, and the
notebooks' Colab parts (install cell, GPU runtime metadata).

Result files here are stand-ins written at the paths and keys `pipeline.plan` gives, so each test
says exactly which files exist; the real computation of a slice is tested end to end in
test_book_colab.py.
"""
from __future__ import annotations

import json

import nbformat
import pytest
import torch

import fairgap_utils as fg
from conftest import REPO
from fairgap_utils.computing import artifacts as A
from fairgap_utils.computing import pipeline as P
from fairgap_utils.computing import stage as S
from fairgap_utils.book import pages, report, runner, sources
from fairgap_utils.config import get_profile
from fairgap_utils.errors import FairgapError


def write_units(units, results_profile="smoke", **extra):
    """A stand-in result file at each unit's path, with its key (so `plan` counts it present)."""
    for u in units:
        A.save_json(u.path, {"key": u.key, "arch": u.arch, "seed": u.seed, "scenario": u.scenario, "label": u.label,
                             "method": u.method, "profile": results_profile,
                             "metrics": {"UA": 1.0, "RA": 2.0, "TA": 3.0, "MIA": 4.0}, **extra})


def smoke_units(results, **subset):
    return P.plan(get_profile("smoke"), results=results, **subset)


# --------------------------------------------------------------------------- which profile

def test_default_profile_prefers_committed_paper_results(tmp_path):
    results, local = tmp_path / "results", tmp_path / "local"
    assert sources.default_profile(results, cuda=False) == "cpu"
    assert sources.default_profile(results, cuda=True) == "paper"                 # make book on a GPU computes it
    assert sources.default_profile(results, cuda=True, computing=False) == "cpu"  # a page shows what exists
    paper = P.plan(get_profile("paper"), archs=["resnet50"], scenarios=["class"], methods=["ft"], results=local)
    write_units(paper[:1])
    assert sources.default_profile(results, cuda=False, computing=False, local=local) == "paper"
    assert sources.default_profile(results, cuda=False, local=local) == "cpu"     # make book: committed only
    write_units(P.plan(get_profile("paper"), archs=["resnet50"], scenarios=["class"], methods=["ft"],
                       results=results)[:1])
    assert sources.default_profile(results, cuda=False) == "paper"
    assert sources.default_profile(results, cuda=False, computing=False) == "paper"


# --------------------------------------------------------------------------- what a profile holds

def test_coverage_names_the_chunks_held_and_missing(tmp_path):
    write_units(smoke_units(tmp_path, archs=["resnet_tiny"], scenarios=["class"]))
    A.save_json(tmp_path / "smoke" / "vit_micro" / "seed0" / "class" / "ft.json", {"key": "an-old-key"})
    cov = sources.coverage("smoke", tmp_path)
    assert (cov.present, cov.total, cov.files, cov.other_configuration) == (15, 56, 16, 1)
    assert cov.held_line == "resnet_tiny class seed 0 (15 of 15)"
    assert cov.missing == ("resnet_tiny random seed 0 (13 of 13 missing), vit_micro class seed 0 (15 of 15 missing), "
                           "vit_micro random seed 0 (13 of 13 missing)")
    text = cov.sentence()
    assert "holds 15 of its 56 result files" in text and "Still missing: resnet_tiny random seed 0" in text
    assert "1 of the 16 files" in text and "another configuration" in text
    assert cov.rows()["chunks missing"] == cov.missing


# --------------------------------------------------------------------------- what a page shows

@pytest.fixture
def committed_and_recomputed(tmp_path):
    """Committed: resnet_tiny class seed 0, complete. Recomputed: the original, Retrain and FT of the same slice."""
    results, local = tmp_path / "results", tmp_path / "local"
    write_units(smoke_units(results, archs=["resnet_tiny"], scenarios=["class"]), origin="committed")
    write_units(smoke_units(local, archs=["resnet_tiny"], scenarios=["class"], methods=["retrain", "ft"])[:3],
                origin="recomputed")
    return results, local


def test_a_page_shows_committed_recomputed_or_merged(committed_and_recomputed):
    results, local = committed_and_recomputed
    committed = sources.shown("smoke", results, local, "committed")
    assert committed.shows == "committed" and {r["origin"] for r in committed} == {"committed"} and len(committed) == 15
    assert committed.source.startswith("Shown: the committed results in ") and "(15 files)" in committed.source
    recomputed = sources.shown("smoke", results, local, "recomputed")
    assert [r["label"] for r in recomputed] == ["ft", "original", "retrain"]          # in file order
    assert "resnet_tiny class seed 0: ft, original, retrain" in recomputed.source
    merged = sources.shown("smoke", results, local, "merged")
    origin = {r["label"]: r["origin"] for r in merged}
    assert len(merged) == 15 and merged.shows == "merged"
    assert {k for k, v in origin.items() if v == "recomputed"} == {"original", "retrain", "ft"}
    assert "replace the 3 committed files of the same models" in merged.source
    assert merged.coverage.present == 15


def test_merged_without_recomputed_files_is_the_committed_results(tmp_path):
    write_units(smoke_units(tmp_path / "results", archs=["vit_micro"], scenarios=["random"]))
    shown = sources.shown("smoke", tmp_path / "results", tmp_path / "local")
    assert shown.shows == "committed" and len(shown) == 13


def test_nothing_to_show_and_a_bad_choice_are_one_line(tmp_path):
    with pytest.raises(FairgapError) as e:
        sources.shown("smoke", tmp_path / "results", tmp_path / "local")
    assert "no results of the current configuration of the smoke profile to show" in str(e.value)
    assert "recompute = True" in str(e.value)
    assert "\n" not in str(e.value)
    with pytest.raises(FairgapError, match="unknown show .* 'both'; valid choices: committed, recomputed, merged"):
        sources.load("smoke", tmp_path, show="both")


def test_load_computes_nothing_by_default(committed_and_recomputed, monkeypatch):
    results, local = committed_and_recomputed

    def no_work(*a, **k):
        raise AssertionError("a page started computing")
    monkeypatch.setattr(S, "compute", no_work)
    monkeypatch.setattr(sources, "recompute_slice", no_work)
    records = pages.load("smoke", results, local_dir=local)
    assert len(records) == 15 and records.shows == "merged"


# --------------------------------------------------------------------------- a recomputed slice

def test_a_slice_prints_what_and_how_long_before_computing(tmp_path, fixed_rates, monkeypatch):
    said, calls = [], []

    def compute(profile, **kw):
        calls.append((profile, kw))
        said.append("COMPUTE")
        units = P.plan(profile, results=kw["results"])
        write_units(units)
        return S.Computed(units, [u.path for u in units], [], units, False, 1.0)
    monkeypatch.setattr(S, "compute", compute)
    records = sources.load("smoke", tmp_path / "results", recompute=True, arch="vit_micro", seed=0, scenario="class",
                           methods=["retrain", "ft"], local_dir=tmp_path / "local", say=said.append)
    profile, kw = calls[0]
    assert (profile.archs, profile.seeds, profile.scenarios, profile.methods) == (("vit_micro",), (0,), ("class",),
                                                                                  ("retrain", "ft"))
    assert profile.retrain_replicates == 0 and kw["results"] == tmp_path / "local"
    assert said[0].startswith("Recompute: the smoke profile's slice vit_micro class seed 0, 3 models "
                              "(original, retrain, ft)")
    table = said[2]
    assert said.index("COMPUTE") == 3 and "vit_micro class seed 0: 3 missing, about" in table
    assert "original training" in table and "Retrain training" in table
    assert sorted(p.name for p in (tmp_path / "local").rglob("*.json")) == ["ft.json", "original.json",
                                                                            "retrain.json"]
    assert records.shows == "recomputed" and len(records) == 3                      # nothing committed: the slice


def test_a_gpu_profile_slice_on_a_cpu_prints_its_estimate_and_stops(tmp_path, fixed_rates, monkeypatch):
    monkeypatch.setattr(S, "compute", lambda *a, **k: pytest.fail("computed on a CPU"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    said = []
    assert sources.recompute_slice("paper", "resnet18", 0, "random", ["ft"], local=tmp_path, say=said.append) is None
    assert "resnet18 random seed 0: 2 missing" in said[2]
    assert said[-1].startswith("Not computed: the paper profile is meant for a GPU") and "allow_cpu" in said[-1]


def test_a_bad_slice_is_one_line(tmp_path):
    for kwargs, words in [(dict(arch="resnet5"), "unknown architecture 'resnet5'"),
                          (dict(scenario="classwise"), "unknown forget scenario 'classwise'"),
                          (dict(seed=-1), "seed -1 is out of range"), (dict(seed=1.5), "seed 1.5 is not a whole")]:
        with pytest.raises(FairgapError, match=words):
            sources.recompute_slice("smoke", local=tmp_path, **kwargs)


# --------------------------------------------------------------------------- the tutorial page

def uniform(model, split, hp, ctx):
    """A stand-in method (never run here)."""
    return model, {}


@pytest.fixture
def registered():
    fg.register_method("tutorial_test", uniform, {"epochs": 1}, title="Tutorial test")
    yield
    from fairgap_utils.unlearn import unregister_method
    unregister_method("tutorial_test")


def test_the_tutorial_reads_its_committed_method_and_computes_only_what_is_missing(tmp_path, registered,
                                                                                  fixed_rates, monkeypatch):
    results = tmp_path / "results"
    slice_ = dict(archs=["resnet_tiny"], seeds=[0], scenarios=["class"])
    profile = get_profile("smoke").replace(retrain_replicates=0)
    write_units(P.plan(profile, methods=["retrain", "ft"], results=results, **slice_))   # the profile's results
    calls = []

    def compute(p, methods, results, **kw):
        calls.append((methods, results))
        write_units(P.plan(p, methods=methods, results=results))
    monkeypatch.setattr(S, "compute", compute)
    args = dict(arch="resnet_tiny", seed=0, compare_with=["ft"], results_dir=results, say=lambda line: None)
    records = sources.tutorial("smoke", "tutorial_test", **args)
    assert calls == [(["tutorial_test"], results / "tutorial")]                    # Retrain and FT are committed
    assert records.labels == ["original", "retrain", "ft", "tutorial_test"] == [r["label"] for r in records]
    assert sorted(p.name for p in (results / "tutorial").rglob("*.json")) == ["original.json", "tutorial_test.json"]
    assert sorted(p.name for p in (results / "smoke").rglob("*.json")) == ["ft.json", "original.json", "retrain.json"]
    assert "from `" in records.source and "tutorial" in records.source
    assert records.original_note.startswith("**Original model**") and "The same model" in records.original_note
    # a fresh clone holds both folders: nothing is computed
    monkeypatch.setattr(S, "compute", lambda *a, **k: pytest.fail("computed although committed"))
    again = sources.tutorial("smoke", "tutorial_test", **args)
    assert [r["label"] for r in again] == records.labels
    assert sorted(r["label"] for r in A.load_records("smoke", results)) == ["ft", "original", "retrain"]
    assert sorted(r["label"] for r in sources.shown("smoke", results, tmp_path / "local")) == [
        "ft", "original", "retrain"]                                              # other pages never see it


def test_the_tutorial_recomputes_into_results_local_when_asked(tmp_path, registered, fixed_rates, monkeypatch):
    calls = []
    monkeypatch.setattr(S, "compute", lambda p, methods, results, **kw: (calls.append((methods, results)),
                                                                         write_units(P.plan(p, methods=methods,
                                                                                            results=results))))
    records = sources.tutorial("smoke", "tutorial_test", "resnet_tiny", 0, ["ft"], tmp_path / "results",
                               recompute=True, local_dir=tmp_path / "local", say=lambda line: None)
    assert calls == [(["retrain", "ft", "tutorial_test"], tmp_path / "local" / "tutorial")]
    assert records.shows == "recomputed" and records.original_note is None
    assert not (tmp_path / "results").exists()


def test_the_tutorial_on_a_cpu_uses_the_cpu_profile_for_a_paper_book(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    said = []
    assert sources.tutorial_profile("paper", "ft_entropy", tmp_path, say=said.append).name == "cpu"
    assert "needs a GPU" in said[0] and "cpu profile instead" in said[0]
    assert sources.tutorial_profile("paper", "ft_entropy", tmp_path, allow_cpu=True).name == "paper"
    A.save_json(tmp_path / "tutorial" / "paper" / "resnet50" / "seed0" / "class" / "ft_entropy.json", {"key": "k"})
    assert sources.tutorial_profile("paper", "ft_entropy", tmp_path).name == "paper"   # committed: read them
    assert sources.tutorial_profile("smoke", "ft_entropy", tmp_path).name == "smoke"


# --------------------------------------------------------------------------- banner, provenance, verdicts

def test_banner_provenance_and_verdicts_say_what_the_profile_holds(committed_and_recomputed, monkeypatch):
    results, local = committed_and_recomputed
    shown = []
    monkeypatch.setattr(pages, "display", shown.append)
    records = sources.shown("smoke", results, local)
    for r in records:
        r |= {"data_source": "test images", "provenance": {"hardware": "a CPU"}}
    pages.banner(records)
    text = shown[-1].data
    assert "**Smoke profile**" in text and "merged with 3 files recomputed here" in text
    assert "holds 15 of its 56 result files" in text and "Still missing: resnet_tiny random seed 0" in text
    monkeypatch.setattr(pages.report, "provenance", lambda records: pages.pd.DataFrame({"": ["smoke"]},
                                                                                       index=["profile"]))
    pages.provenance_box(records)
    table = shown[-1]
    assert table.loc["chunks present (arch scenario seed)", ""] == "resnet_tiny class seed 0 (15 of 15)"
    assert table.loc["chunks missing", ""].startswith("resnet_tiny random seed 0 (13 of 13 missing)")
    assert table.loc["shown", ""].startswith("the committed results in")
    verdicts = pages.coverage_markdown(records)
    assert verdicts.startswith("**What these verdicts rest on.** The smoke profile holds 15 of its 56")
    assert "the missing chunks have no verdict yet" in verdicts and "recomputed here" in verdicts


def test_runtime_note_only_on_colab():
    assert sources.runtime_note(colab=False) is None
    cpu = sources.runtime_note(colab=True, cuda=False)
    assert cpu.startswith("Colab CPU runtime: this page shows the committed results") and "\n" not in cpu


# --------------------------------------------------------------------------- make book's profile

@pytest.fixture
def fake_book(monkeypatch):
    calls = {"compute": [], "execute": []}
    monkeypatch.setattr(S, "compute", lambda p, **kw: calls["compute"].append(p.name))
    monkeypatch.setattr(runner, "execute", lambda name, out, *a, **k: calls["execute"].append(name))
    monkeypatch.setattr(runner, "build", lambda out: out)
    return calls


def test_make_book_rebuilds_the_paper_book_on_a_cpu_without_computing(tmp_path, fake_book, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    runner.run(None, tmp_path, tmp_path / "results")                       # no paper results: cpu, computed
    assert fake_book == {"compute": ["cpu"], "execute": ["cpu"]}
    with pytest.raises(FairgapError, match="no result files of the paper profile .* nothing is computed here"):
        runner.run("paper", tmp_path, tmp_path / "results")
    write_units(P.plan(get_profile("paper"), archs=["resnet50"], scenarios=["class"], results=tmp_path / "results"))
    fake_book["compute"].clear(), fake_book["execute"].clear()
    runner.run(None, tmp_path, tmp_path / "results")
    assert fake_book == {"compute": [], "execute": ["paper"]}              # never the cpu profile instead
    out = capsys.readouterr().out
    assert "no CUDA here: the book is built from the result files present, computing nothing" in out
    assert "holds 18 of its 102 result files" in out and "vit_small class seed 0 (18 of 18 missing)" in out
    runner.run("cpu", tmp_path, tmp_path / "results")                      # make book PROFILE=cpu
    assert fake_book["execute"][-1] == "cpu" and fake_book["compute"] == ["cpu"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    runner.run(None, tmp_path, tmp_path / "results")                       # on a GPU: computes what is missing
    assert fake_book["compute"][-1] == "paper"


def test_fairgap_compute_0_builds_from_the_files_present(tmp_path, fake_book, monkeypatch):
    """The publishing workflow sets FAIRGAP_COMPUTE=0 so that `make book` never computes a profile in progress."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    write_units(P.plan(get_profile("cpu"), archs=["resnet18_w8"], seeds=[0], scenarios=["class"],
                       results=tmp_path / "results"))
    monkeypatch.setenv("FAIRGAP_COMPUTE", "0")
    runner.run("cpu", tmp_path, tmp_path / "results")
    assert fake_book == {"compute": [], "execute": ["cpu"]}
    monkeypatch.setenv("FAIRGAP_COMPUTE", "1")
    runner.run("cpu", tmp_path, tmp_path / "results")
    assert fake_book["compute"] == ["cpu"]
    monkeypatch.setenv("FAIRGAP_COMPUTE", "no")
    with pytest.raises(FairgapError, match="FAIRGAP_COMPUTE.*'no'"):
        runner.run("cpu", tmp_path, tmp_path / "results")


def test_cli_run_no_compute(monkeypatch):
    from fairgap_utils import __main__ as cli
    seen = {}
    monkeypatch.setattr(runner, "run", lambda *a, **k: seen.update(args=a, kwargs=k))
    assert cli.main(["run", "--no-compute"]) == 0
    assert seen["args"][0] is None and seen["kwargs"] == {"compute_missing": False, "jobs": None}
    assert cli.main(["run", "--profile", "smoke"]) == 0
    assert seen["args"][0] == "smoke" and seen["kwargs"] == {"compute_missing": None, "jobs": None}
    assert cli.main(["run", "--profile", "smoke", "--jobs", "2"]) == 0
    assert seen["kwargs"] == {"compute_missing": None, "jobs": 2}


# --------------------------------------------------------------------------- the notebooks' Colab parts

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_ask_colab_for_a_gpu_and_read_committed_results(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["accelerator"] == "GPU" and nb.metadata["colab"]["gpuType"]
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tagged = {t: c for c in nb.cells for t in c.metadata.get("tags", [])}
    install = tagged["install"].source
    assert '"git", "clone", "--quiet", "--depth", "1", "--branch", BRANCH, REPOSITORY_URL' in install
    assert '"pip", "install", "--quiet", "--editable", CLONE' in install
    params = tagged["parameters"].source
    assert "recompute = False" in params and "compute_missing" not in params
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "compute_missing" not in code and "fg.compute(" not in code


def test_the_runner_points_the_install_cell_at_the_configured_repository():
    nb = nbformat.read(REPO / "notebooks" / "00_intro.ipynb", as_version=4)
    runner._fill_repository(nb, {"url": "file:///tmp/remote", "branch": "colab-test"})
    install = next(c for c in nb.cells if "install" in c.metadata.get("tags", [])).source
    assert 'REPOSITORY_URL = "file:///tmp/remote"' in install and 'BRANCH = "colab-test"' in install
    compile(install, "install", "exec")


def test_results_local_is_ignored_by_git():
    assert "results-local/" in (REPO / ".gitignore").read_text().splitlines()
    assert json.loads(json.dumps(sources.SHOW)) == ["committed", "recomputed", "merged"]


# --------------------------------------------------------------------------- files a page leaves out

def test_a_page_leaves_out_stale_and_unreadable_files_and_says_so(tmp_path):
    """One truncated rl.json, one file of an old configuration and one that is not a result file: the page
    shows the current files only, names the unreadable ones in one line and counts the stale one."""
    units = smoke_units(tmp_path, archs=["resnet_tiny"], scenarios=["class"], methods=["retrain", "ft", "rl"])
    write_units(units)
    by_label = {u.label: u for u in units}
    by_label["rl"].path.write_text('{"key": "' + by_label["rl"].key + '", "arch": "resn')     # truncated
    stale = json.loads(by_label["ft"].path.read_text())
    by_label["ft"].path.write_text(json.dumps({**stale, "key": "an-old-key"}))                 # another configuration
    (by_label["ft"].path.parent / "notes.json").write_text("[1, 2, 3]")                        # not a result file
    records = sources.shown("smoke", tmp_path)
    assert {r["label"] for r in records} == {"original", "retrain", "retrain-r1"}
    cov = records.coverage
    assert cov.other_configuration == 1 and len(cov.unreadable) == 2
    text = cov.sentence()
    assert "1 of the 6 files" in text and "left out of every table and figure" in text
    assert "rl.json" in text and "notes.json" in text and "Left out, unreadable" in text
    assert "unreadable files (left out)" in cov.rows()
    md = pages.coverage_markdown(records)
    assert "rl.json" in md


def test_only_stale_files_is_one_clear_line(tmp_path):
    units = smoke_units(tmp_path, archs=["resnet_tiny"], scenarios=["class"], methods=["retrain"])
    write_units(units)
    for u in units:
        u.path.write_text(json.dumps({**json.loads(u.path.read_text()), "key": "an-old-key"}))
    with pytest.raises(FairgapError, match="no results of the current configuration of the smoke profile"):
        sources.shown("smoke", tmp_path)


def test_every_source_notebook_cell_has_an_id():
    """A cell without an id gets a random one from nbformat each time the page executes, so a rebuild from
    unchanged results would change the executed page's bytes."""
    for nb in NOTEBOOKS:
        lacking = [i for i, c in enumerate(json.loads(nb.read_text())["cells"]) if "id" not in c]
        assert not lacking, f"{nb.name}: cells {lacking} lack an id"


def _timed(arch, seed, scenario, label, time_s, eval_time_s=300.0):
    return {"arch": arch, "seed": seed, "scenario": scenario, "label": label, "stats": {"time_s": time_s},
            "eval_time_s": eval_time_s, "provenance": {"hardware": "CPU"}}


def test_the_compute_time_counts_an_original_once_though_both_scenarios_record_it():
    """One original per (arch, seed) serves both scenarios, and each scenario's file records its training."""
    records = [_timed("r", 0, "class", "original", 7200), _timed("r", 0, "random", "original", 7200),
               _timed("r", 0, "class", "retrain", 3600), _timed("r", 0, "random", "retrain", 3600),
               _timed("r", 0, "class", "ft", 1800), _timed("r", 1, "class", "original", 7200)]
    assert report.compute_seconds(records) == (7200 + 3600 + 3600 + 1800 + 7200, 6 * 300)
    assert "took 7.0 hours of one process" in pages.compute_time(records)     # 2 originals, not 3 (9.0 hours)


def test_the_intro_and_the_provenance_box_state_the_same_compute_time():
    records = pages.load("cpu", REPO / "results")
    box = report.provenance(records)[""]
    minutes = sum(float(box[k].removesuffix(" min")) for k in ("compute time (training + unlearning)",
                                                                "measurement time"))
    assert f"took {minutes / 60:.1f} hours" in pages.compute_time(records)

