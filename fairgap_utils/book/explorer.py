"""Figures a reader can probe in the built book, with no kernel and no network.

Each explorer precomputes from the result files every combination its controls can pick
(architecture, σ definition, class set, layer or group of layers, attack, ε, ...) and hands
the table to a Vega-Lite chart, built with Altair, whose controls are HTML inputs bound to
Vega-Lite parameters: the reader's browser only filters and draws. The methods drawn are
picked in the legend (click one, shift-click to add more, double-click the plot for all).

`show` writes a chart into the notebook as HTML that draws itself with the book's own copy
of Vega, `_static/fairgap-vega.js`: the Vega + Vega-Lite + vega-embed bundle that
vl-convert ships (`bundle_path`), put there at build time by the book's Sphinx extension
(`sphinx_ext`). A page loads nothing from elsewhere. In a live
Jupyter or Colab kernel a chart displays natively with `display(chart)`; the notebooks also
keep their ipywidgets explorers for that case.

Colours are `plots.method_color`, the one palette of every figure of the book.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd

from ..definitions import CLASS_SETS, SIGMA_DEFINITIONS
from ..files import atomic_write, cache_dir
from ..manifest import method_facts
from . import dose_response as DR
from . import plots, report
from .stats import spearman_matrix as spearman  # noqa: F401  (explorer.spearman)

BUNDLE = "fairgap-vega.js"
WIDTH = 470          # px of a plot's data area: with axes and legend a figure fits the ~750 px column
LAYER_GROUPS = {"all": "mean over all layers", "early": "mean over the early third",
                "intermediate": "mean over the intermediate third", "last": "mean over the last third"}
LAYER_QUANTITIES = {"eps": "ε", "own": "log(ε / ε of the model's own original)",
                    "ret": "log(ε / ε of the seed's Retrain)"}
OUTCOMES = {"acc": "accuracy under attack (%)", "drop": "drop under attack (clean − attacked, points)"}
LEGEND_HINT = "click: only this one · shift-click: add · double-click the plot: all"


# --------------------------------------------------------------------------- tables

def _class_scenario(records) -> list[dict]:
    return [r for r in records if r["scenario"] == "class"]


def _combos():
    return [(d, c) for d in SIGMA_DEFINITIONS for c in CLASS_SETS]


def dataset(df: pd.DataFrame, name: str) -> tuple[alt.NamedData, str]:
    """A table as (reference, CSV text): four significant digits, a missing value left empty
    (read back as null through the explicit number parse). CSV keeps a page small: the column
    names come once, not once per row as in JSON."""
    parse = {c: "number" for c in df.columns if pd.api.types.is_numeric_dtype(df[c])}
    text = df.to_csv(index=False, float_format="%.4g", lineterminator="\n")
    return alt.NamedData(name=name, format=alt.DataFormat(type="csv", parse=parse)), text


def label_order(labels) -> list[str]:
    """Original, Retrain, then the methods in registry order, each variant after its method."""
    rank = {m: i for i, m in enumerate(method_facts())}   # "original" first, then the registry's order
    return sorted(set(labels), key=lambda lbl: (rank.get(plots.method_of(lbl), len(rank)),
                                                lbl != plots.method_of(lbl), lbl))


def layer_table(records) -> pd.DataFrame:
    """One row per (architecture, model label, layer) of the class-wise scenario; for every σ
    definition × class set (`channel_all`, ...) the mean over seeds and std (`_sd`) of ε (`_eps`),
    of log(ε / ε of the same seed's original) (`_own`) and of log(ε / ε of its Retrain) (`_ret`),
    each at the same layer; `n`: seeds. Log-ratios are missing where an ε is not positive."""
    keys = ["arch", "label", "method", "depth", "layer"]
    out = None
    for d, c in _combos():
        e = report.epsilon_frame(_class_scenario(records), d, c)
        log = np.log(e.epsilon.where(e.epsilon > 0))
        at = pd.MultiIndex.from_frame(e[["arch", "seed", "depth"]])
        e["eps"] = e.epsilon
        for ref, col in (("original", "own"), ("retrain", "ret")):
            ref_log = log[e.label == ref].set_axis(at[(e.label == ref).to_numpy()])
            e[col] = log.to_numpy() - ref_log.reindex(at).to_numpy()
        g = e.groupby(keys, sort=False)[["eps", "own", "ret"]]
        stats = g.mean().join(g.std().add_suffix("_sd"))
        stats.columns = [f"{d}_{c}_{q}" for q in stats.columns]
        if out is None:
            out = stats.join(g.size().rename("n"))
        else:
            out = out.join(stats)
    return out.reset_index()


def layer_choices(records) -> pd.DataFrame:
    """One row per model of the class-wise scenario; a column per layer choice and σ definition ×
    class set (`all_channel_all`, `early_pooled_retained`, `L3_sample_all`, ...): ε averaged over
    all layers, over a third of them (LAYER_GROUPS) or at one layer (`L<depth>`)."""
    keys = ["arch", "seed", "label", "method"]
    cols = []
    for d, c in _combos():
        e = report.epsilon_frame(_class_scenario(records), d, c)
        e["group"] = e.rel_depth.map(report.layer_thirds)
        g = e.groupby(keys, sort=False)
        cols.append(g.epsilon.mean().rename(f"all_{d}_{c}"))
        cols += [e[e.group == t].groupby(keys, sort=False).epsilon.mean().rename(f"{t}_{d}_{c}")
                 for t in ("early", "intermediate", "last")]
        single = e.pivot_table(index=keys, columns="depth", values="epsilon", sort=False)
        cols += [single[depth].rename(f"L{depth}_{d}_{c}") for depth in single.columns]
    return pd.DataFrame({c.name: c for c in cols}).rename_axis(keys).reset_index()


def layer_names(records) -> pd.DataFrame:
    """Per (architecture, layer choice): the layer's name, or which layers a group averages."""
    e = report.epsilon_frame(_class_scenario(records))[["arch", "depth", "layer", "rel_depth"]]
    e = e.drop_duplicates(["arch", "depth"])
    rows = [{"arch": a, "layer": f"L{d}", "name": f"layer {d}: {n}"} for a, d, n in zip(e.arch, e.depth, e.layer)]
    for arch, g in e.groupby("arch"):
        third = g.rel_depth.map(report.layer_thirds)
        rows.append({"arch": arch, "layer": "all", "name": f"mean over all {len(g)} layers"})
        for group in ("early", "intermediate", "last"):
            depths = g.depth[third == group]
            span = f"layers {depths.min()}–{depths.max()}" if len(depths) else "no layer"
            rows.append({"arch": arch, "layer": group, "name": f"mean over the {group} third ({span})"})
    return pd.DataFrame(rows)


def attack_columns(records) -> pd.DataFrame:
    """Per model of the class-wise scenario: accuracy (%) under every attack and ε > 0
    (columns `fgsm_2`, `pgd_8`, ... with ε in 1/255) and without attack (`clean`)."""
    att = report.attack_frame(_class_scenario(records))
    att["column"] = [f"{a}_{e:g}" if e > 0 else "clean" for a, e in zip(att.attack, att.eps)]
    att = att.drop_duplicates(["arch", "seed", "label", "column"])
    return att.pivot_table(index=["arch", "seed", "label"], columns="column", values="accuracy").reset_index()


def correlation_table(records) -> pd.DataFrame:
    """One row per (architecture, layer choice); for every σ definition × class set, attack
    column (`fgsm_2`, ...) and outcome (`acc`, `drop`) the Spearman ρ between ε and the outcome
    over all models of the architecture (`pooled_...`), its mean over seeds computed within
    each seed (`within_...`; seeds share an original and a Retrain) and the models (`n_...`)."""
    points = layer_choices(records).merge(attack_columns(records), on=["arch", "seed", "label"], how="left")
    attacks = [c for c in points.columns if c.split("_")[0] in ("fgsm", "pgd")]
    outcomes = pd.concat([points[attacks].add_prefix("acc_"),
                          points[attacks].rsub(points["clean"], axis=0).add_prefix("drop_")], axis=1)
    rows = []
    for arch, g in points.groupby("arch", sort=False):
        layers = list(dict.fromkeys(c.split("_")[0] for c in g.columns if c.endswith(("_all", "_retained"))))
        for layer in layers:
            xcols = [f"{layer}_{d}_{c}" for d, c in _combos()]
            x, y = g[xcols], outcomes.loc[g.index]
            if x.isna().all().all():
                continue
            pooled = spearman(x, y)
            per_seed = [spearman(x[g.seed == s], y[g.seed == s]) for s in sorted(g.seed.unique())]
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)     # a pair undefined in every seed
                within = np.nanmean(per_seed, axis=0)
            n = (x.notna().to_numpy(int).T @ y.notna().to_numpy(int))
            row = {"arch": arch, "layer": layer}
            for i, (d, c) in enumerate(_combos()):
                for j, out in enumerate(y.columns):      # out: acc_fgsm_2, drop_pgd_8, ...
                    row[f"pooled_{d}_{c}_{out}"] = pooled[i, j]
                    row[f"within_{d}_{c}_{out}"] = within[i, j]
                    row[f"n_{d}_{c}_{out}"] = n[i, j]
            rows.append(row)
    return pd.DataFrame(rows)


def attack_table(records) -> pd.DataFrame:
    """One row per (architecture, model label, attack, ε): mean over seeds and std of the accuracy
    (%) and of the drop from the same model's clean accuracy (points); `n`: seeds."""
    att = report.attack_frame(_class_scenario(records))
    clean = att[att.eps == 0].drop_duplicates(["arch", "seed", "label"]).set_index(["arch", "seed", "label"]).accuracy
    att["drop"] = clean.reindex(pd.MultiIndex.from_frame(att[["arch", "seed", "label"]])).to_numpy() - att.accuracy
    g = att.groupby(["arch", "label", "method", "attack", "eps"], sort=False)[["accuracy", "drop"]]
    out = g.mean().join(g.std().add_suffix("_sd")).join(g.size().rename("n"))
    return out.reset_index().rename(columns={"accuracy": "acc", "accuracy_sd": "acc_sd"})


# --------------------------------------------------------------------------- charts

def _select(name: str, options, title: str, labels=None) -> alt.Parameter:
    options = list(options)
    return alt.param(name=name, value=options[0], bind=alt.binding_select(
        options=options, labels=list(labels or map(str, options)), name=f"{title} "))


def _radio(name: str, options, title: str, labels=None) -> alt.Parameter:
    options = list(options)
    return alt.param(name=name, value=options[0], bind=alt.binding_radio(
        options=options, labels=list(labels or map(str, options)), name=f"{title} "))


def _label_scales(labels):
    """Colour, dash and width per model label: the book's palette and line styles."""
    styles = [plots.label_style(lbl) for lbl in labels]
    dash = {"--": [6, 3], ":": [2, 2]}
    return dict(
        color=alt.Scale(domain=labels, range=[s["color"] for s in styles]),
        dash=alt.Scale(domain=labels, range=[dash.get(s.get("ls"), [1, 0]) for s in styles]),
        width=alt.Scale(domain=labels, range=[s.get("lw", 1.5) for s in styles]))


def _legend(title="model"):
    # the same legend on every layer (a legend=None on one layer hides the merged one); symbols
    # opaque whatever the layer's mark opacity
    return alt.Legend(title=[title, "(click to pick)"], symbolLimit=0, labelLimit=100, symbolOpacity=1)


def layer_explorer(records) -> alt.VConcatChart:
    """ε per layer (top) and methods × layers (bottom) of the class-wise scenario: architecture,
    σ definition, class set and quantity (ε, or its log-ratio to the model's own original or to
    the seed's Retrain) are controls; a ±1 std band over seeds on demand."""
    t = layer_table(records)
    data, csv = dataset(t, "layers")
    labels = label_order(t.label)
    scales = _label_scales(labels)
    arch = _select("arch", sorted(t.arch.unique()), "architecture")
    definition = _radio("definition", SIGMA_DEFINITIONS, "σ definition")
    class_set = _radio("class_set", CLASS_SETS, "classes in max/min", ["all", "retained only"])
    quantity = _radio("quantity", LAYER_QUANTITIES, "draw", ["ε", "log-ratio to own original", "log-ratio to Retrain"])
    band = alt.param(name="band", value=False, bind=alt.binding_checkbox(name="±1 std over seeds "))
    shown = alt.selection_point(name="shown", fields=["label"], bind="legend")
    column = "definition + '_' + class_set + '_' + quantity"
    base = (alt.Chart(data)
            .transform_filter(alt.datum.arch == arch)
            .transform_calculate(value=f"datum[{column}]", sd=f"datum[{column} + '_sd']")
            .transform_filter("isValid(datum.value) && isFinite(datum.value)"))
    x = alt.X("depth:Q", title=plots.LAYER_AXIS, axis=alt.Axis(tickMinStep=1, format="d"))
    tooltip = ["label:N", "layer:N", alt.Tooltip("value:Q", format=".4g", title="mean"),
               alt.Tooltip("sd:Q", format=".2g", title="std"), alt.Tooltip("n:Q", title="seeds")]
    lines = base.mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=x, y=alt.Y("value:Q", title="ε (feature variance) or log-ratio (no unit)"),
        color=alt.Color("label:N", scale=scales["color"], legend=_legend()),
        strokeDash=alt.StrokeDash("label:N", scale=scales["dash"], legend=None),
        strokeWidth=alt.StrokeWidth("label:N", scale=scales["width"], legend=None),
        opacity=alt.condition(shown, alt.value(1), alt.value(0.06)), tooltip=tooltip)
    bands = base.transform_filter(band).transform_filter(shown).transform_calculate(
        lo="datum.value - datum.sd", hi="datum.value + datum.sd").mark_area(opacity=0.12).encode(
        x=x, y="lo:Q", y2="hi:Q", color=alt.Color("label:N", scale=scales["color"], legend=_legend()))
    title = alt.TitleParams(
        text=alt.ExprRef(f"arch + ' · σ ' + definition + ' · ' + class_set + ' classes: ' + "
                         f"{_expr_lookup('quantity', LAYER_QUANTITIES)}"),
        subtitle="class-wise forgetting, mean over seeds; hover a point for its layer", anchor="start", fontSize=13)
    top = alt.layer(bands, lines, title=title).add_params(arch, definition, class_set, quantity, band, shown
                                                          ).properties(width=WIDTH, height=280)
    heat = base.mark_rect().encode(
        x=alt.X("depth:O", title=plots.LAYER_AXIS, axis=alt.Axis(labelAngle=0, labelOverlap=True)),
        y=alt.Y("label:N", sort=labels, title=None),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="redblue", reverse=True, domainMid=0),
                        legend=alt.Legend(title=["value", "(0: white)"], gradientLength=120)),
        opacity=alt.condition(shown, alt.value(1), alt.value(0.15)), tooltip=tooltip,
    ).properties(width=WIDTH, height=alt.Step(14), title=alt.TitleParams(
        "the same values as models × layers (red: above 0, blue: below)", anchor="start", fontSize=12))
    return alt.vconcat(top, heat, spacing=18).resolve_scale(color="independent").properties(datasets={"layers": csv})


def correlation_explorer(records) -> alt.VConcatChart:
    """One point per model of the class-wise scenario: ε at a layer or averaged over a group of
    layers against accuracy under attack or its drop, with the Spearman ρ of that choice."""
    models = layer_choices(records).merge(attack_columns(records), on=["arch", "seed", "label"], how="left")
    rho, names = correlation_table(records), layer_names(records)
    (models_data, models_csv), (rho_data, rho_csv), (names_data, names_csv) = (
        dataset(models, "models"), dataset(rho, "rho"), dataset(names, "layer_names"))
    labels = label_order(models.label)
    scales = _label_scales(labels)
    depths = sorted(int(c.split("_")[0][1:]) for c in models.columns
                    if c.startswith("L") and c.endswith("_channel_all"))
    attack_cols = [c for c in models.columns if c.split("_")[0] in ("fgsm", "pgd")]
    attacks = list(dict.fromkeys(c.split("_")[0] for c in attack_cols))
    eps_values = sorted({float(c.split("_")[1]) for c in attack_cols})

    arch = _select("arch", sorted(models.arch.unique()), "architecture")
    layer = _select("layer", [*LAYER_GROUPS, *(f"L{d}" for d in depths)], "layers",
                    [*LAYER_GROUPS.values(), *(f"layer {d}" for d in depths)])
    definition = _radio("definition", SIGMA_DEFINITIONS, "σ definition")
    class_set = _radio("class_set", CLASS_SETS, "classes in max/min", ["all", "retained only"])
    attack = _radio("attack", attacks, "attack", [a.upper() for a in attacks])
    eps = _select("eps", [f"{e:g}" for e in eps_values], "ε (×1/255)")
    outcome = _radio("outcome", OUTCOMES, "y axis", ["accuracy", "drop"])
    shown = alt.selection_point(name="shown", fields=["label"], bind="legend")

    choice = "definition + '_' + class_set + '_' + outcome + '_' + attack + '_' + eps"
    base = (alt.Chart(models_data)
            .transform_filter(alt.datum.arch == arch)
            .transform_calculate(x="datum[layer + '_' + definition + '_' + class_set]",
                                 y="outcome == 'acc' ? datum[attack + '_' + eps] "
                                   ": datum.clean - datum[attack + '_' + eps]")
            .transform_filter("isValid(datum.x) && isValid(datum.y)"))
    x = alt.X("x:Q", title="fairness-gap ε at the chosen layers (feature variance)", scale=alt.Scale(zero=False),
              axis=alt.Axis(tickCount=6, labelOverlap=True))
    y = alt.Y("y:Q", title="accuracy (%) or drop (points) under attack", scale=alt.Scale(zero=False))
    dots = base.mark_point(filled=True, size=55).encode(
        x=x, y=y, color=alt.Color("label:N", scale=scales["color"], legend=_legend()),
        shape=alt.Shape("seed:N", legend=alt.Legend(title="seed")),
        opacity=alt.condition(shown, alt.value(0.9), alt.value(0.08)),
        tooltip=["label:N", "seed:N", alt.Tooltip("x:Q", format=".4g", title="ε"), alt.Tooltip("y:Q", format=".1f")])
    fit = base.transform_regression("x", "y").mark_line(color="gray", strokeWidth=1).encode(x="x:Q", y="y:Q")
    stats = (alt.Chart(rho_data)
             .transform_filter((alt.datum.arch == arch) & (alt.datum.layer == layer))
             .transform_calculate(within=f"datum['within_' + {choice}]", pooled=f"datum['pooled_' + {choice}]",
                                  n=f"datum['n_' + {choice}]")
             .transform_filter("isValid(datum.n)")
             .transform_calculate(text="'Spearman ρ within seed (mean over seeds): ' + "
                                       "(isValid(datum.within) ? format(datum.within, '+.2f') : 'undefined') + "
                                       "' · pooled over ' + datum.n + ' models: ' + "
                                       "(isValid(datum.pooled) ? format(datum.pooled, '+.2f') : 'undefined')")
             .mark_text(align="left", baseline="top", fontSize=12, fontWeight="bold")
             .encode(x=alt.value(0), y=alt.value(2), text="text:N"))
    name = (alt.Chart(names_data).transform_filter((alt.datum.arch == arch) & (alt.datum.layer == layer))
            .mark_text(align="left", baseline="top", fontSize=11, color="#555")
            .encode(x=alt.value(0), y=alt.value(20), text="name:N"))
    missing = (alt.Chart(alt.Data(values=[{"runs": ", ".join(c.replace("_", " at ") + "/255" for c in attack_cols)}]))
               .transform_filter(f"indexof({json.dumps(attack_cols)}, attack + '_' + eps) < 0")
               .transform_calculate(text="'no run of this attack at this ε; runs: ' + datum.runs")
               .mark_text(align="left", baseline="top", fontSize=12, color="#b00")
               .encode(x=alt.value(0), y=alt.value(2), text="text:N"))
    title = alt.TitleParams(
        text=alt.ExprRef(f"arch + ' · ' + upper(attack) + ' at ' + eps + '/255 · σ ' + definition + ' · ' + "
                         f"class_set + ' classes: ' + {_expr_lookup('outcome', OUTCOMES)}"),
        subtitle="class-wise forgetting, one point per model and seed; gray: least-squares line over all points",
        anchor="start", fontSize=13)
    header = alt.layer(stats, name, missing).properties(width=WIDTH, height=34, view=alt.ViewBackground(stroke=None))
    scatter = alt.layer(dots, fit).add_params(shown).properties(width=WIDTH, height=320)
    return alt.vconcat(header, scatter, spacing=4, title=title).add_params(
        arch, layer, definition, class_set, attack, eps, outcome).properties(
        datasets={"models": models_csv, "rho": rho_csv, "layer_names": names_csv})


def attack_explorer(records) -> alt.LayerChart:
    """Accuracy under attack (or its drop from clean accuracy) against ε, one line per model
    label (mean over seeds, ±1 std band): architecture, attack and outcome are controls."""
    t = attack_table(records)
    data, csv = dataset(t, "attacks")
    labels = label_order(t.label)
    scales = _label_scales(labels)
    attacks = list(dict.fromkeys(t.attack))
    arch = _select("arch", sorted(t.arch.unique()), "architecture")
    attack = _radio("attack", attacks, "attack", [a.upper() for a in attacks])
    outcome = _radio("outcome", OUTCOMES, "y axis", ["accuracy", "drop"])
    shown = alt.selection_point(name="shown", fields=["label"], bind="legend")
    base = (alt.Chart(data).transform_filter((alt.datum.arch == arch) & (alt.datum.attack == attack))
            .transform_calculate(value="datum[outcome]", sd="datum[outcome + '_sd']",
                                 lo="datum.value - datum.sd", hi="datum.value + datum.sd"))
    x = alt.X("eps:Q", title=plots.ATTACK_EPS_AXIS)
    lines = base.mark_line(point=True).encode(
        x=x, y=alt.Y("value:Q", title="accuracy (%) or drop (points)"),
        color=alt.Color("label:N", scale=scales["color"], legend=_legend()),
        strokeDash=alt.StrokeDash("label:N", scale=scales["dash"], legend=None),
        strokeWidth=alt.StrokeWidth("label:N", scale=scales["width"], legend=None),
        opacity=alt.condition(shown, alt.value(1), alt.value(0.06)),
        tooltip=["label:N", alt.Tooltip("eps:Q", title="ε ×255"), alt.Tooltip("value:Q", format=".1f", title="mean"),
                 alt.Tooltip("sd:Q", format=".1f", title="std"), alt.Tooltip("n:Q", title="seeds")])
    bands = base.transform_filter(shown).transform_filter("isValid(datum.sd)").mark_area(opacity=0.1).encode(
        x=x, y="lo:Q", y2="hi:Q", color=alt.Color("label:N", scale=scales["color"], legend=_legend()))
    title = alt.TitleParams(
        text=alt.ExprRef(f"arch + ' · ' + upper(attack) + ': ' + {_expr_lookup('outcome', OUTCOMES)}"),
        subtitle="class-wise forgetting, remaining test classes; mean over seeds, band ±1 std",
        anchor="start", fontSize=13)
    return alt.layer(bands, lines, title=title).add_params(arch, attack, outcome, shown).properties(
        width=WIDTH, height=300, datasets={"attacks": csv})


def dose_explorer(records, analysis=None) -> alt.LayerChart:
    """KeepGap's dose-response (Conjecture 2 by intervention): the change of ε against RL (x) and of the
    headline attack's accuracy (y), one point per model of the grid; pick the architecture, the accuracy
    (attacked or clean) and a penalty in the legend; hover for the seed and weight."""
    a = analysis or report.analysis_of(records)
    f = DR.dose_frame(records, a)
    if f.empty:
        return alt.Chart(pd.DataFrame({"text": ["no dose-response runs in these results"]})).mark_text().encode(
            text="text")
    long = pd.concat([f.assign(quantity=q, value=f[c]) for q, c in
                      ((f"{a.attack.upper()} {a.attack_eps:g}/255 accuracy − RL's", "y"), ("clean accuracy (TA) − RL's",
                                                                                            "clean"))])
    long = long[["arch", "seed", "target", "weight", "multiplier", "x", "quantity", "value"]].round(4)
    data, _ = dataset(long, "dose")
    arch = _radio("dose_arch", sorted(f.arch.unique()), "architecture")
    what = _radio("dose_quantity", list(dict.fromkeys(long.quantity)), "y")
    pick = alt.selection_point(fields=["target"], bind="legend")
    base = alt.Chart(data).transform_filter(f"datum.arch == {arch.name} && datum.quantity == {what.name}")
    points = base.mark_point(filled=True, size=50).encode(
        x=alt.X("x:Q", title="change of ε against RL (100·log-ratio, layer mean)"),
        y=alt.Y("value:Q", title="points against RL on the same seed"),
        color=alt.Color("target:N", title="penalty", legend=alt.Legend(title=f"penalty ({LEGEND_HINT})")),
        shape=alt.Shape("seed:N"),
        opacity=alt.condition(pick, alt.value(0.9), alt.value(0.1)),
        tooltip=["target:N", "seed:N", "weight:Q", "multiplier:Q", "x:Q", "value:Q"])
    fits = base.transform_filter(pick).transform_regression("x", "value", groupby=["target", "seed"]).mark_line(
        opacity=0.5).encode(x="x:Q", y="value:Q", color="target:N", detail="seed:N")
    return (points + fits).add_params(arch, what, pick).properties(width=WIDTH, height=300)


def _expr_lookup(param: str, names: dict) -> str:
    """A Vega expression mapping a parameter's value to its display name."""
    return f"{json.dumps(names, ensure_ascii=False)}[{param}]"


# --------------------------------------------------------------------------- into the page

_LOADER = """<style>.fairgap-explorer .vega-bind {{ margin: 0.15em 0; }} \
.fairgap-explorer .vega-bind-name {{ display: inline-block; min-width: 11.5em; font-weight: 600; }} \
.fairgap-explorer .vega-bind-radio label {{ margin-right: 1em; }} \
.fairgap-explorer .vega-bind-radio input {{ margin-right: 0.3em; }}</style>
<div class="fairgap-explorer" id="{id}" style="min-height: 2em">\
<p><em>Interactive figure: it draws in the built book, whose own JavaScript (_static/{bundle}) \
renders it with no kernel and no network. In Jupyter or Colab, run the next cell for the \
same controls with a live kernel, or display the chart object itself.</em></p></div>
<script type="text/javascript">
(function () {{
  var el = document.getElementById("{id}");
  var spec = {spec};
  function draw() {{
    vegaEmbed(el, spec, {{actions: false, renderer: "svg"}}).then(function (result) {{
      el.fairgapView = result.view;
      el.dataset.ready = "1";
    }}).catch(function (error) {{ console.error("fairgap explorer {id}: " + error); }});
  }}
  if (window.vegaEmbed) {{ draw(); return; }}
  // Sphinx's own script says where _static is, relative to this page
  var options = document.querySelector('script[src*="_static/documentation_options.js"]');
  if (!options) {{ return; }}  // not the built book: the note above stays
  var script = document.querySelector("script[data-fairgap-vega]");
  if (!script) {{
    script = document.createElement("script");
    script.src = new URL("{bundle}", options.src).href;
    script.setAttribute("data-fairgap-vega", "");
    document.head.appendChild(script);
  }}
  script.addEventListener("load", draw);
}})();
</script>"""


def html(chart: alt.TopLevelMixin) -> str:
    """The chart as self-drawing HTML; the same chart gives the same bytes (the id is its hash)."""
    spec = json.dumps(chart.to_dict(), separators=(",", ":"), ensure_ascii=True).replace("</", "<\\/")
    fig_id = "fairgap-explorer-" + hashlib.sha1(spec.encode()).hexdigest()[:12]
    return _LOADER.format(id=fig_id, spec=spec, bundle=BUNDLE)


def show(chart: alt.TopLevelMixin) -> None:
    """Put a chart on the page (see the module's docstring for how it draws offline)."""
    from IPython.display import HTML, display  # lazy: IPython only in a notebook kernel
    display(HTML(html(chart)))


# --------------------------------------------------------------------------- the book's static file

def bundle_path(cache=None) -> Path:
    """Vega, Vega-Lite and vega-embed as one script that defines `window.vegaEmbed`: vl-convert's
    bundle inside a function scope (its top-level `const _` and the like would otherwise clash
    with the page's other scripts), cached per vl-convert version."""
    import vl_convert  # lazy: vl-convert only to render the static image of a chart
    path = cache_dir(cache) / "explorer" / f"vl-convert-{vl_convert.__version__}-scoped" / BUNDLE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, f"(() => {{\n{vl_convert.javascript_bundle()}\n}})();\n".encode())
    return path
