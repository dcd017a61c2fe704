"""Every statistic of the book is written once, in fairgap_utils/book/stats.py.

Spearman's rho, the one-scatter correlation with its bootstrap interval and the matrix of rhos the
explorers draw are `stats`' functions; `report` and `explorer` hand them on under the names the
notebooks use. A second definition anywhere else in the book would be a copy that can drift.
"""
from __future__ import annotations

import ast

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from fairgap_utils.book import explorer, report, stats

STATISTICS = {"spearman", "partial_spearman", "spearman_matrix", "correlation", "bootstrap_ci", "fisher_interval"}


def test_the_book_defines_each_statistic_in_stats_only():
    elsewhere = []
    for path in sorted((REPO / "fairgap_utils" / "book").glob("*.py")):
        if path.name == "stats.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and (node.name in STATISTICS or "bootstrap" in node.name):
                elsewhere.append(f"{path.name}: {node.name}")
    assert not elsewhere, f"statistics defined outside book/stats.py: {elsewhere}"


def test_the_names_the_notebooks_use_are_stats_functions():
    assert report.correlation is stats.correlation and report.bootstrap_ci is stats.bootstrap_ci
    assert explorer.spearman is stats.spearman_matrix


def test_the_matrix_and_the_scatter_agree_with_spearman():
    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.normal(size=12), "b": rng.integers(0, 4, 12).astype(float)})
    y = pd.DataFrame({"u": rng.normal(size=12), "v": x.a + rng.normal(size=12)})
    want = [[stats.spearman(x[a], y[b]) for b in y] for a in x]
    assert stats.spearman_matrix(x, y) == pytest.approx(np.array(want))
    assert stats.correlation(x.a, y.v, n_boot=0)["r"] == pytest.approx(stats.spearman(x.a, y.v))
    lo, hi = stats.correlation(x.a, y.v, n_boot=200)["lo"], stats.correlation(x.a, y.v, n_boot=200)["hi"]
    assert lo <= stats.spearman(x.a, y.v) <= hi
