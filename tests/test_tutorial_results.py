"""The committed results of the page "Evaluate your own method" (results/tutorial/) are current.

The page reads its original from results/tutorial/<profile>, computing it only when the file is missing or
its key differs, so a stale file makes a book build that computes nothing train a model after all (it did:
the measurement's configuration changed and the committed file kept the old key). The method's own file is
keyed by the notebook's code too and is checked by executing the page; the original is checked here.
"""
from __future__ import annotations

from pathlib import Path

from fairgap_utils.computing.pipeline import plan, select
from fairgap_utils.config import get_profile

REPO = Path(__file__).resolve().parent.parent


def test_the_committed_tutorial_original_has_the_current_key():
    folder = REPO / "results" / "tutorial"
    p = get_profile("cpu")
    sub = select(p, [p.archs[0]], [0], ["class"]).replace(retrain_replicates=0)
    original = [u for u in plan(sub, methods=[], results=folder) if u.label == "original"]
    assert len(original) == 1
    assert original[0].present, (f"{original[0].path} is missing or keyed {original[0].key!r} by another "
                                 "configuration: recompute it by executing notebooks/06_your_method.ipynb")
