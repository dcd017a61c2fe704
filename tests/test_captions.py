"""The block under every figure and verdict: the function that produced it, the files it read, the commit."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from fairgap_utils.book import captions, plots, verdicts
from fairgap_utils.errors import FairgapError

REPO = Path(__file__).resolve().parents[1]


def record(arch="resnet18_w8", seed=0, scenario="class", label="rl", method=None):
    return {"profile": "cpu", "arch": arch, "seed": seed, "scenario": scenario, "label": label,
            "method": method or label.split("-")[0]}


RECORDS = [record(arch, seed, scenario, label) for arch in ("resnet18_w8", "vit_tiny") for seed in (0, 1, 2)
           for scenario in ("class", "random") for label in ("original", "retrain", "rl", "keep_gap")]


class Shown(list):
    """What `pages.load` returns: the records and where they were read."""
    profile, shows, source = "cpu", "committed", "Shown: the committed results."
    coverage = SimpleNamespace(folder=REPO / "results" / "cpu")


def test_the_block_names_the_function_and_counts_the_files():
    c = captions.caption(plots.claim_effects, Shown(RECORDS))
    assert "fairgap_utils.book.plots.claim_effects" in c.text
    assert f"Read {len(RECORDS)} result files of the cpu profile, seeds 0–2 (resnet18_w8, vit_tiny)" in c.text
    assert "results/cpu/*/seed*/*/*.json" in c.text
    assert "fairgap_utils/book/plots.py, lines " in c.text
    first, last = (int(n) for n in c.text.split("plots.py, lines ")[1].split(")")[0].split("–"))
    source = (REPO / "fairgap_utils/book/plots.py").read_text().splitlines()
    assert source[first - 1].startswith("def claim_effects(") and first < last <= len(source)


def test_filters_choose_the_files_the_call_read():
    c = captions.caption([verdicts.all_claims, verdicts.scorecard], Shown(RECORDS), what="verdict",
                         scenario="class", label=["rl", "keep_gap*"], seed=[0, 1])
    assert c.summary == "The code that generated this verdict"
    assert "Decided by fairgap_utils.book.verdicts.all_claims" in c.text
    assert ", then fairgap_utils.book.verdicts.scorecard" in c.text
    assert "Read 8 result files of the cpu profile, seeds 0, 1 (resnet18_w8, vit_tiny)" in c.text
    assert "results/cpu/*/seed{0,1}/class/{keep_gap*,rl}.json" in c.text
    by_method = captions.caption(plots.claim_effects, RECORDS, method="keep_gap", arch="vit_tiny")
    assert "Read 6 result files" in by_method.text and "vit_tiny/seed*/*/keep_gap.json" in by_method.text
    none = captions.caption(plots.claim_effects, RECORDS, label="salun")
    assert "no result file of the cpu profile matches" in none.text


def test_records_from_several_folders_name_their_source():
    mixed = Shown(RECORDS[:3])
    mixed.shows, mixed.source = "merged", "Shown: the committed results merged with 2 files recomputed here."
    c = captions.caption(plots.claim_effects, mixed)
    assert "results/cpu" not in c.text and c.text.count("merged with 2 files recomputed here") == 1


def test_the_block_is_collapsed_html_linking_the_source_at_the_commit():
    c = captions.caption(plots.claim_effects, Shown(RECORDS))
    assert c.html.startswith('<details class="fairgap-code"><summary>The code that generated this figure</summary>')
    assert "<details open" not in c.html
    commit = captions.git_commit()
    url = captions.repository()["url"].rstrip("/")
    ref = commit.split()[0] if commit != "unknown" else captions.repository().get("branch", "main")
    assert f'href="{url}/blob/{ref}/fairgap_utils/book/plots.py#L' in c.html
    assert f"Code at git commit <code>{commit}</code>" in c.html


def test_the_commit_is_the_codes_last_commit_or_unknown_never_a_failure(tmp_path):
    """The last commit that changed the package or the notebooks (so committing a rebuilt book or new results
    does not change what the pages say), marked when the working tree's code differs from it."""
    if shutil.which("git") and (REPO / ".git").exists():
        last = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%H", "--", *captions.CODE],
                              capture_output=True, text=True).stdout.strip()[:12]
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no", "--",
                                *captions.CODE], capture_output=True, text=True).stdout.strip()
        assert captions.git_commit(REPO) == last + (" + uncommitted changes" if dirty else "")
    repo = tmp_path / "repo"
    (repo / "fairgap_utils").mkdir(parents=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        (repo / "fairgap_utils" / "a.py").write_text("x = 1\n")
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-qm", "code"], check=True)
        code = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()[:12]
        (repo / "book.txt").write_text("rebuilt\n")
        subprocess.run([*git, "add", "."], check=True)
        subprocess.run([*git, "commit", "-qm", "book"], check=True)
        assert captions.git_commit.__wrapped__(repo) == code                       # not HEAD: the book's commit
        (repo / "fairgap_utils" / "a.py").write_text("x = 2\n")
        assert captions.git_commit.__wrapped__(repo) == code + " + uncommitted changes"
    assert captions.git_commit(REPO, git=str(tmp_path / "no-git-here")) == "unknown"   # no git
    assert captions.git_commit(tmp_path) == "unknown"                                  # not a repository
    assert captions.git_commit(REPO / "fairgap_utils") == "unknown"    # inside one, not its top: not its code
    c = captions.caption(plots.claim_effects, RECORDS, git=str(tmp_path / "no-git-here"))
    assert "Code at git commit unknown" in c.text
    assert f"/blob/{captions.repository().get('branch', 'main')}/" in c.html   # the link falls back to the branch


def test_without_config_or_repository_there_is_no_link_and_no_failure(tmp_path):
    c = captions.caption(plots.claim_effects, RECORDS, root=tmp_path)
    assert "fairgap_utils.book.plots.claim_effects (outside the repository)" in c.text
    assert "href=" not in c.html and "Code at git commit unknown" in c.text


def test_a_function_defined_on_the_page_and_a_figure_drawn_by_the_cell():
    namespace = {"__name__": "__main__"}
    exec("def unlearn(model, split, hp, ctx):\n    return model, {}\n", namespace)
    c = captions.caption(namespace["unlearn"], RECORDS)
    assert "__main__.unlearn (defined on this page)" in c.text and "href=" not in c.html
    cell = captions.caption([], RECORDS, note="the training loss per epoch of each file")
    assert "Drawn by the code of the cell above" in cell.text and "the training loss per epoch" in cell.text


def test_bad_input_is_one_line_naming_the_choices():
    with pytest.raises(FairgapError, match="record field to filter on 'epoch'.*arch, seed, scenario, label"):
        captions.caption(plots.claim_effects, RECORDS, epoch=3)
    with pytest.raises(FairgapError, match="what.*'plot'.*figure, table, verdict"):
        captions.caption(plots.claim_effects, RECORDS, what="plot")
    with pytest.raises(FairgapError, match="not a function"):
        captions.caption("plots.claim_effects", RECORDS)


def test_produced_by_displays_the_block(capsys):
    assert captions.produced_by(plots.claim_effects, RECORDS, scenario="random") is None
    out = capsys.readouterr().out
    assert "The code that generated this figure" in out and "Read 24 result files" in out


def test_the_provenance_rows_give_the_commit():
    rows = captions.provenance_rows()
    assert list(rows) == ["code (git commit)"] and rows["code (git commit)"].startswith(captions.git_commit())


def test_each_claim_of_the_paper_names_its_deciding_function():
    for claim in ("C1", "C2", "C3", "C4", "C5"):
        f = captions.verdict_function(SimpleNamespace(claim=claim))
        assert f is getattr(verdicts, f"claim_{claim.lower()}")
    with pytest.raises(FairgapError, match="no function of verdicts decides claim 'KeepGap'.*C1, C2, C3, C4, C5"):
        captions.verdict_function(SimpleNamespace(claim="KeepGap"))


def test_other_files_read_are_named_and_counted():
    tuning = REPO / "results" / "cpu" / "tuning"
    also = [tuning / "a" / "keep_gap.json", tuning / "b" / "keep_gap.json"]
    c = captions.caption(plots.claim_effects, Shown(RECORDS), also=also)
    assert "Also read 2 other files: results/cpu/tuning/a/keep_gap.json, results/cpu/tuning/b/keep_gap.json" in c.text
    assert "Also read" not in captions.caption(plots.claim_effects, Shown(RECORDS)).text
