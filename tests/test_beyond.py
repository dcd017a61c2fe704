"""KeepGap as the book reports it: which runs are judged, the plain reading, the glance table, the recipe."""
from __future__ import annotations

import json

import numpy as np
import pytest

from fairgap_utils.book import beyond
from fairgap_utils.book import verdicts as V
from fairgap_utils.book.stats import holm
from test_verdicts import METHODS, A, beyond_world

HP = {"epochs": 3, "lr": 0.01, "target": "deviation", "layers": "all", "statistics": "ema", "sigma_momentum": 0.1}


def keep_gap_world(new_effect=lambda s: 0.001 * s, spread_effect=None):
    """beyond_world with KeepGap's hyperparameters and logs: `keep_gap` (deviation, weight 30), `keep_gap-spread`
    (weight 3) and one dose-response run of the deviation target (weight 60, not a calibrated run)."""
    records = beyond_world(new_effect, labels=(*METHODS, "keep_gap", "keep_gap-spread", "keep_gap-deviation-x2"))
    for r in records:
        if r["method"] != "keep_gap":
            continue
        target, weight = {"keep_gap": ("deviation", 30.0), "keep_gap-spread": ("spread", 3.0),
                          "keep_gap-deviation-x2": ("deviation", 60.0)}[r["label"]]
        r["stats"]["hyperparameters"] = {**HP, "target": target, "weight": weight}
        r["stats"]["logs"] = {"penalty_share_per_epoch": [0.08 + 0.01 * r["seed"], 0.05],
                              "penalized_layers": [L["layer"] for L in r["fairness"]]}
        if spread_effect and r["label"] == "keep_gap-spread":
            for layer in r["fairness"]:
                layer["sigma"] = {d: [1.0, 1.0 + spread_effect] + [1.0] * 8 for d in layer["sigma"]}
    return records


def write_tuning(folder, profile="smoke", arch="net"):
    path = folder / profile / "tuning" / arch / "keep_gap.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({
        "arch": arch, "seed": 0, "scenario": "class", "grid": [1, 3, 10, 30, 100], "margin": 2.0, "targets": {
            "deviation": {"weight": 30.0, "points": [
                {"weight": 100.0, "val_acc_minus_rl": -9.5, "penalty_share_per_epoch": [0.4]},
                {"weight": 30.0, "val_acc_minus_rl": -1.5, "penalty_share_per_epoch": [0.09]}]},
            "spread": {"weight": 3.0, "points": [
                {"weight": 10.0, "val_acc_minus_rl": -2.5, "penalty_share_per_epoch": [0.6]},
                {"weight": 3.0, "val_acc_minus_rl": 0.3, "penalty_share_per_epoch": [0.2]}]}}}))
    return path


def test_the_calibrated_runs_are_judged_and_the_dose_grid_is_not():
    records = keep_gap_world()
    assert beyond.calibrated_labels(records) == ["keep_gap", "keep_gap-spread"]
    claims = beyond.claims(records, A)
    assert [c.claim for c in claims] == ["KeepGap (class)", "KeepGap (spread) (class)"]
    assert beyond.calibrated_labels(beyond_world(lambda s: 0.0, labels=METHODS)) == []


def test_both_targets_are_one_holm_family():
    claims = beyond.claims(keep_gap_world(), A)
    cells = [p.per_arch[a] for c in claims for p in c.parts for a in p.per_arch]
    raw = [x for v in cells for x in (v.p_direction, v.p_equivalence)]
    adjusted = [x for v in cells for x in (v.p_direction_adj, v.p_equivalence_adj)]
    np.testing.assert_allclose(adjusted, holm(raw), equal_nan=True)
    alone = V.beyond_the_paper(keep_gap_world(), analysis=A)[0]   # its own family: smaller adjusted p-values
    assert alone.parts[0].per_arch["net"].p_direction_adj <= claims[0].parts[0].per_arch["net"].p_direction_adj


def test_the_reading_says_positive_or_negative_with_its_figures():
    positive = beyond.reading(beyond.claims(keep_gap_world(), A), keep_gap_world())
    first = positive.splitlines()[0]
    assert first.startswith("- **KeepGap (class), net: positive** (supported; weight 30, the penalty 8.0%–10.0% "
                            "of the loss in the first epoch, 3 seeds).")
    assert ("Its ε moved by +0.1 [−0.1, +0.3] (3 seeds) from its own original (RL's, same seeds: +21.0 [+18.5, "
            "+23.5] (3 seeds))") in first                   # 100·0.001·seed against RL's 100·(0.2 + 0.01·seed)
    assert "Met: keeps ε at its original's (−20.90 [" in first and "Not met" not in first
    records = keep_gap_world(lambda s: -0.3 - 0.01 * s)
    negative = beyond.reading(beyond.claims(records, A), records).splitlines()[0]
    assert "net: negative** (contradicted" in negative
    assert "Not met: keeps ε at its original's (+" in negative and "): the opposite" in negative
    assert beyond.reading([], records).startswith("**Not computed**")


def test_the_glance_table_has_every_figure_the_plan_judges(tmp_path):
    write_tuning(tmp_path)
    records = keep_gap_world(spread_effect=0.5)
    g = beyond.glance(beyond.claims(records, A), records, A, results=tmp_path)
    row = g.loc[("KeepGap", "class", "net")]
    assert row["weight"] == "30" and row["chosen on validation"] == "30"
    assert row["penalty share, epoch 1"] == "8.0%–10.0%"
    assert row["time / RL's"] == "1.30× (median, 3 seeds)" and row["seeds"] == 3
    assert row["verdict"] == "supported"
    for part in ("keeps ε at its original's", "forgets: UA − UA_Retrain", "forgets: MIA − MIA_Retrain",
                 "more robust than RL", "robust like Retrain"):
        assert row[part].startswith(("+", "−")) and "[" in row[part]
    spread = g.loc[("KeepGap (spread)", "class", "net")]
    assert spread["weight"] == "3" and spread["chosen on validation"] == "3"
    assert spread["change of ε from own original"].startswith("−")   # a spread of 0.5 instead of 1: ε lowered


def test_the_method_page_states_the_recipe_and_the_calibration(tmp_path):
    write_tuning(tmp_path)
    records = keep_gap_world()
    text = beyond.recipe(records, results=tmp_path)
    assert ("**KeepGap** (`keep_gap`): RL (3 epochs, lr 0.01) plus the `deviation` penalty" in text
            and "on all normalization layers (6 on net), from `ema` statistics (a running estimate per class, "
                "momentum 0.1); weight per architecture: net 30." in text)
    assert "**KeepGap (spread)** (`keep_gap-spread`)" in text and "net 3." in text
    assert "the largest of 1, 3, 10, 30, 100 whose validation accuracy is within 2 points of RL's" in text
    assert "Chosen: net: deviation 30, spread 3." in text
    table = beyond.calibration_table(records, results=tmp_path)
    assert table.loc[("net", "deviation", 30.0), "chosen"] and not table.loc[("net", "deviation", 100.0), "chosen"]
    assert table.loc[("net", "spread", 10.0), "within the margin"] == False   # noqa: E712  (−2.5 < −2)
    assert table.loc[("net", "deviation", 30.0), "penalty share, epoch 1"] == "9.0%"
    assert [p.name for p in beyond.calibration_files(records, results=tmp_path)] == ["keep_gap.json"]
    assert beyond.recipe(beyond_world(lambda s: 0.0, labels=METHODS)).startswith("**Not computed**")
    assert beyond.calibration_table(records, results=tmp_path / "none").empty


@pytest.mark.parametrize("hp, expected", [
    ({**HP, "weight": 1.0}, "**The result files ran at other values** than these (read from the files): "
                            "`weight` 30 on net class."),
    ({**HP, "weight": 30.0}, ""),
])
def test_hyperparameters_the_files_ran_at_are_said(hp, expected):
    assert beyond.recorded_hyperparameters(keep_gap_world(), "keep_gap", hp) == expected


def test_the_dose_response_slopes_are_said_with_their_intervals():
    import test_dose_response as TD
    dose = V.dose_response(TD.world(), TD.A)
    lines = beyond.dose_slopes(dose).splitlines()
    assert len(lines) == 4                                # two penalties, two architectures
    spread_vit = next(line for line in lines if line.startswith("- spread penalty, vit_tiny: slope −0.10 ["))
    assert "(3 seeds), in points of accuracy under the headline attack per unit of ε change" in spread_vit
    verdict = dose[0].parts[1].per_arch["vit_tiny"].verdict
    assert "margin ±0.05 (declared)" in spread_vit and spread_vit.endswith(f"**{verdict}**.")
    assert beyond.dose_slopes([]) == ""
