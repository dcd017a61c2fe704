"""No number in the book's prose is typed by hand: measured figures come from the result files.

The prose of every page (the notebooks' markdown cells and the book's own markdown pages) and the
README may state settings (1,000 images per class, 4/255, k = 3) but never a measured figure: a
duration, a decimal percentage or point difference, an interval or a ± spread. Those are generated
by the pages from the result files, or the prose links to the page that generates them. The
analysis plan declares margins before any result: it is the one page whose numbers are declarations.
"""
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DECLARATIONS = {"book/analysis_plan.md", "book/references.md"}
MEASURED = [
    ("a duration", re.compile(r"(?<![\w/.])\d+(?:[.,]\d+)?\s?(?:s|sec|seconds|min|minutes|h|hours)\b")),
    ("a decimal percentage or point figure", re.compile(r"(?<![\w/.])\d+\.\d+\s?(?:%|points?\b|pp\b)")),
    ("an interval", re.compile(r"\[\s?[+−-]?\d+\.\d+\s?,\s?[+−-]?\d")),
    ("a ± spread", re.compile(r"±\s?\d+\.\d")),
]


def prose() -> dict[str, str]:
    """Every page's prose (code spans and fenced code removed), keyed by its path."""
    out = {}
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        out[str(nb.relative_to(REPO))] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    for md in sorted((REPO / "book").glob("*.md")):
        if str(md.relative_to(REPO)) not in DECLARATIONS:
            out[str(md.relative_to(REPO))] = md.read_text()
    out["README.md"] = (REPO / "README.md").read_text()
    return {k: re.sub(r"`[^`\n]*`", "", re.sub(r"```.*?```", "", v, flags=re.S)) for k, v in out.items()}


def typed_figures(text: str) -> list[str]:
    return [f"{what}: {m.group(0)!r} in “…{text[max(0, m.start() - 40):m.end() + 20]}…”"
            for what, pattern in MEASURED for m in pattern.finditer(text)]


@pytest.mark.parametrize("path", sorted(prose()))
def test_no_measured_figure_is_typed_into_prose(path):
    found = typed_figures(prose()[path])
    assert not found, f"{path} types measured figures by hand (generate them or link the page):\n" + "\n".join(found)


@pytest.mark.parametrize("text", ["it took 143 min on 2 cores", "TA 71.8% on seed 0", "−2.81 [−3.40, −2.21]",
                                  "a floor of ±11.6", "about 8 s per page"])
def test_the_check_catches_typed_figures(text):
    assert typed_figures(text)


@pytest.mark.parametrize("text", ["1,000 training images per class", "FGSM at 4/255", "k = 3", "random 10%",
                                  "`make book` takes `--jobs 2`", "seeds 0 to 9", "images in [0, 1]",
                                  "band: ±1 std over seeds"])
def test_the_check_allows_settings(text):
    assert not typed_figures(text)
