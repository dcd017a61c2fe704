"""The book's interactive explorers (tables, Vega-Lite specs, HTML), its palette, and the tidying
that makes executed notebooks byte-identical across runs. The browser side is tested end to end
in test_book.py (headless Chromium on the built smoke book)."""
from __future__ import annotations

import io
import json

import nbformat
import numpy as np
import pandas as pd
import pytest

from fairgap_utils.book import explorer, plots, report, runner
from fairgap_utils.unlearn import METHODS

CLASSES = [f"c{i}" for i in range(10)]
LABELS = {"original": "original", "retrain": "retrain", "ft": "ft", "ga": "ga", "cf_k-k3": "cf_k"}


def record(arch, seed, label, eps_by_layer, fgsm=None, clean=50.0):
    """A result file's content: sigma_c puts the gap eps between classes 0 and 1 at every layer
    (so ε = eps under every σ definition, for all classes and for the retained ones)."""
    fairness = [{"layer": f"norm{d}", "depth": d, "kind": "BatchNorm2d",
                 "sigma": {k: [1.0, 1.0 + e] + [1.0] * 8 for k in ("channel", "pooled", "sample")}}
                for d, e in enumerate(eps_by_layer)]
    fgsm = fgsm or {2: 30.0, 8: 10.0}
    return {"profile": "smoke", "arch": arch, "seed": seed, "scenario": "class", "label": label,
            "method": LABELS[label], "forget_class": 9, "classes": CLASSES, "fairness": fairness,
            "attacks": {"fgsm": {"0.0": clean, **{str(e / 255): a for e, a in fgsm.items()}},
                        "pgd": {"0.0": clean, str(8 / 255): fgsm[8] - 5}}}


@pytest.fixture(scope="module")
def records():
    """Two architectures (6 and 3 layers), two seeds; ε grows with the label's index and the seed,
    and accuracy under FGSM falls as ε rises (a perfect negative rank correlation within a seed)."""
    rng = np.random.default_rng(0)
    out = []
    for arch, n_layers in (("net_a", 6), ("net_b", 3)):
        for seed in (0, 1):
            for i, label in enumerate(LABELS):
                eps = [0.1 * (i + 1) + 0.05 * seed + 0.01 * d + rng.uniform(0, 0.004) for d in range(n_layers)]
                out.append(record(arch, seed, label, eps, fgsm={2: 40.0 - 3 * i + seed, 8: 20.0 - 2 * i}))
    return out


def test_layer_table_ratios_are_zero_for_their_own_reference(records):
    t = explorer.layer_table(records)
    assert len(t) == len(LABELS) * (6 + 3)                     # one row per (arch, label, layer)
    orig, ret = t[t.label == "original"], t[t.label == "retrain"]
    assert np.allclose(orig["channel_all_own"], 0) and np.allclose(ret["pooled_retained_ret"], 0)
    assert (t.n == 2).all()
    # ε of ft at net_a's layer 2, mean over the two seeds, as report.epsilon_frame gives it
    e = report.epsilon_frame(records, "sample", "all")
    want = e[(e.arch == "net_a") & (e.label == "ft") & (e.depth == 2)].epsilon.mean()
    got = t[(t.arch == "net_a") & (t.label == "ft") & (t.depth == 2)]["sample_all_eps"].item()
    assert got == pytest.approx(want)
    # log(ε / ε of the same seed's original), then the mean over seeds
    ga = t[(t.arch == "net_b") & (t.label == "ga")].set_index("depth")["channel_all_own"]
    b = e[e.arch == "net_b"].set_index(["label", "seed", "depth"]).epsilon
    for d in range(3):
        assert ga[d] == pytest.approx(np.mean([np.log(b["ga", s, d] / b["original", s, d]) for s in (0, 1)]))


def test_layer_choices_average_the_right_layers(records):
    c = explorer.layer_choices(records).set_index(["arch", "seed", "label"])
    e = report.epsilon_frame(records, "channel", "retained")
    ft = e[(e.arch == "net_a") & (e.seed == 1) & (e.label == "ft")].set_index("depth").epsilon
    row = c.loc[("net_a", 1, "ft")]
    assert row["all_channel_retained"] == pytest.approx(ft.mean())
    assert row["early_channel_retained"] == pytest.approx(ft[[0, 1]].mean())    # 6 layers: 0-1, 2-3, 4-5
    assert row["last_channel_retained"] == pytest.approx(ft[[4, 5]].mean())
    assert row["L3_channel_retained"] == pytest.approx(ft[3])
    assert np.isnan(c.loc[("net_b", 0, "ft")]["L5_channel_all"])                 # net_b has 3 layers
    names = explorer.layer_names(records).set_index(["arch", "layer"]).name
    assert names[("net_b", "L2")] == "layer 2: norm2" and names[("net_a", "all")] == "mean over all 6 layers"
    assert names[("net_a", "intermediate")] == "mean over the intermediate third (layers 2–3)"


def test_spearman_matches_report_correlation_with_ties_and_gaps():
    rng = np.random.default_rng(1)
    x = pd.DataFrame(rng.normal(size=(12, 3)), columns=list("abc"))
    y = pd.DataFrame({"u": rng.integers(0, 4, 12).astype(float), "v": rng.normal(size=12)})   # u has ties
    want = [[report.correlation(x[a], y[b], n_boot=0)["r"] for b in y] for a in x]
    assert explorer.spearman(x, y) == pytest.approx(np.array(want))
    y.loc[3, "v"] = np.nan                                                        # falls back pair by pair
    ok = y.v.notna()
    assert explorer.spearman(x, y)[1, 1] == pytest.approx(report.correlation(x.b[ok], y.v[ok], n_boot=0)["r"])


def test_correlation_table_within_seed_and_pooled(records):
    t = explorer.correlation_table(records).set_index(["arch", "layer"])
    row = t.loc[("net_a", "all")]
    assert row["within_channel_all_acc_fgsm_2"] == pytest.approx(-1.0)          # accuracy falls as ε rises
    assert row["n_channel_all_acc_fgsm_2"] == 2 * len(LABELS)
    pts = explorer.layer_choices(records).merge(explorer.attack_columns(records), on=["arch", "seed", "label"])
    a = pts[pts.arch == "net_a"]
    pooled = report.correlation(a["all_channel_all"], a["clean"] - a["fgsm_2"], n_boot=0)["r"]
    assert row["pooled_channel_all_drop_fgsm_2"] == pytest.approx(pooled)
    assert ("net_b", "L5") not in t.index


def test_explorers_are_valid_vega_lite_with_every_control(records):
    for build, controls in ((explorer.layer_explorer, {"arch", "definition", "class_set", "quantity", "band"}),
                            (explorer.correlation_explorer, {"arch", "layer", "definition", "class_set", "attack",
                                                             "eps", "outcome"}),
                            (explorer.attack_explorer, {"arch", "attack", "outcome"})):
        spec = build(records).to_dict()                                          # validates against the schema
        text = json.dumps(spec)
        bound = {p["name"] for p in _params(spec) if "bind" in p}
        assert controls | {"shown"} <= bound, (build.__name__, bound)
        for name, csv in spec["datasets"].items():
            frame = pd.read_csv(io.StringIO(csv))
            assert len(frame) > 0, name
        assert "NaN" not in text and "Infinity" not in text


def _params(spec):
    for p in spec.get("params", []):
        yield p
    for key in ("layer", "vconcat", "hconcat"):
        for sub in spec.get(key, []):
            yield from _params(sub)


def test_html_is_deterministic_offline_and_safe_to_inline(records):
    chart = explorer.attack_explorer(records)
    a, b = explorer.html(chart), explorer.html(explorer.attack_explorer(records))
    assert a == b                                                  # same results, same bytes: rebuilds change nothing
    assert "http" not in a.split("var spec")[0] and "<script src" not in a
    assert explorer.BUNDLE in a and 'id="fairgap-explorer-' in a
    spec_text = a.split("var spec = ", 1)[1].split(";\n  function draw", 1)[0]
    assert "</" not in spec_text and json.loads(spec_text.replace("<\\/", "</"))["datasets"]


def test_label_order_and_palette():
    assert explorer.label_order(["ga", "cf_k-k3", "retrain", "original", "cf_k", "zz"]) == \
        ["original", "retrain", "cf_k", "cf_k-k3", "ga", "zz"]
    colors = [plots.method_color(m) for m in ["original", *METHODS]]
    assert len(set(colors)) == len(colors), "two methods share a colour"
    assert plots.method_color("cf_k-k3") == plots.method_color("cf_k")
    assert plots.label_style("original")["ls"] == "--" and plots.label_style("retrain")["lw"] > 2
    assert plots.label_style("cf_k-k3")["ls"] == ":" and "ls" not in plots.label_style("cf_k")
    assert plots.method_color("not_a_method") in plots.SPARE_COLORS


def test_tidy_leaves_nothing_that_changes_between_runs(tmp_path):
    def executed(run: int) -> str:
        nb = nbformat.v4.new_notebook()
        nb.metadata.update(papermill={"end_time": f"2026-01-0{run}", "output_path": f"/tmp/run{run}/x.ipynb"},
                           widgets={"application/vnd.jupyter.widget-state+json": {"state": {f"id{run}": {}}}},
                           language_info={"name": "python", "version": f"3.11.{run}"})
        injected = nbformat.v4.new_code_cell("profile = 'smoke'")
        injected.metadata.update(tags=["injected-parameters"], papermill={"duration": run})
        injected.id = f"random{run}"
        widget = nbformat.v4.new_code_cell("W.interact(f)")
        widget.outputs = [nbformat.v4.new_output("display_data", {
            runner.WIDGET_VIEW: {"model_id": f"m{run}", "version_major": 2, "version_minor": 0},
            "text/plain": "interactive(...)"})]
        widget.metadata["execution"] = {"iopub.execute_input": f"2026-01-0{run}"}
        widget.id = "fixed"
        nb.cells = [injected, widget]
        path = tmp_path / f"run{run}.ipynb"
        nbformat.write(nb, path)
        runner._tidy(path)
        return path.read_text()
    first = executed(1)
    assert first == executed(2)
    nb = nbformat.reads(first, as_version=4)
    assert nb.cells[0].id == "injected-parameters" and "hide-cell" in nb.cells[0].metadata.tags
    assert nb.cells[1].outputs == [] and "widgets" not in nb.metadata and "papermill" not in nb.metadata


def test_bundle_defines_vega_embed(tmp_path):
    path = explorer.bundle_path(cache=tmp_path)
    assert path.name == explorer.BUNDLE and path.parent.parent == tmp_path / "explorer"
    text = path.read_text()
    assert "window.vegaEmbed=" in text and len(text) > 300_000
    assert explorer.bundle_path(cache=tmp_path) == path                   # cached: written once


def test_sphinx_extension_serves_the_bundle_and_dedupes_scripts(tmp_path, monkeypatch):
    from sphinx.builders.html._assets import _JavaScript
    from fairgap_utils.book import sphinx_ext
    monkeypatch.setenv("FAIRGAP_CACHE", str(tmp_path))

    class Config:
        html_static_path = ["_static"]
        html_context = {}
    config = Config()
    sphinx_ext._add_bundle(None, config)
    assert config.html_static_path == ["_static", str(explorer.bundle_path().parent)]
    assert config.html_context["default_mode"] in ("auto", "light", "dark")
    thebe = "const THEBE_JS_URL = 'x'"
    context = {"script_files": [_JavaScript(None, body=thebe), _JavaScript("_static/a.js"),
                                _JavaScript("", body=thebe), _JavaScript("_static/a.js", priority=200)]}
    sphinx_ext._unique_scripts(None, "page", "page.html", context, None)
    assert [(str(j.filename or ""), j.priority) for j in context["script_files"]] == \
        [("", 500), ("_static/a.js", 500), ("_static/a.js", 200)]
