"""The analysis plan page (book/analysis_plan.md) and the code declare the same values."""
import ast
import re
from pathlib import Path

from fairgap_utils.config import get_profile

PAGE = Path(__file__).resolve().parent.parent / "book" / "analysis_plan.md"


def declared() -> dict:
    """Every `name = value` the page declares in backticks."""
    return {m.group(1): ast.literal_eval(m.group(2))
            for m in re.finditer(r"`([a-z_0-9]+) = ([^`]+)`", PAGE.read_text())}


def test_the_page_declares_the_values_the_code_uses():
    p = get_profile("cpu")
    values = declared()
    assert len(values) >= 15, values
    code = {**vars(p.analysis), **vars(p.eval)}
    from fairgap_utils.unlearn import METHODS
    code["layers"] = METHODS["keep_gap"].defaults["layers"]
    mismatched = {k: (v, code.get(k, "<absent>")) for k, v in values.items()
                  if (tuple(code[k]) if isinstance(code.get(k), tuple) else code.get(k)) != v}
    assert not mismatched, f"page value vs code value: {mismatched}"


def test_the_page_names_the_seeds_of_the_profile():
    p = get_profile("cpu")
    text = PAGE.read_text()
    assert p.seeds == tuple(range(10))
    assert "**Seeds**: 0 to 9 (ten)" in text
    assert f"seed 0 has {p.retrain_replicates} more Retrains" in text
