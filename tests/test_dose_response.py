"""fairgap_utils.book.dose_response on synthetic result records with a known answer.

Each seed's grid is built so that y is an exact linear function of x with a slope chosen per
seed: the per-seed slopes, their mean and interval, the rows that enter (and those that must
not), and the figure are checked against it.
"""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest

from fairgap_utils.book import dose_response as DR
from fairgap_utils.book import stats
from fairgap_utils.config import AnalysisConfig

matplotlib.use("Agg")

A = AnalysisConfig()
LAYERS = ("bn1", "layer1.0.bn1", "layer4.1.bn2")
W_STAR = {"deviation": 30.0, "spread": 3.0}
SLOPE = {("resnet18_w8", "deviation"): (-0.02, -0.03, -0.01), ("resnet18_w8", "spread"): (0.05, 0.04, 0.06),
         ("vit_tiny", "deviation"): (0.0, 0.01, -0.01), ("vit_tiny", "spread"): (-0.1, -0.12, -0.08)}
SHIFT = {"deviation": -0.1, "spread": -0.4}     # log eps change per unit of multiplier, every layer alike


def record(arch, seed, label, method, x_log=0.0, adv=30.0, ta=70.0, scenario="class", **hp):
    """A result record whose every layer has eps = exp(x_log) * (1 + layer index) (class 0 raised)."""
    fairness = []
    for i, name in enumerate(LAYERS):
        eps = math.exp(x_log) * (1 + i)
        fairness.append({"layer": name, "depth": i, "kind": "BatchNorm2d",
                         "sigma": {"channel": [1.0 + eps] + [1.0] * 9}})
    hyper = {"weight": 1.0, "target": "deviation", "layers": "all", "lr": 0.01, **hp} if method == "keep_gap" \
        else {"lr": 0.01}
    return {"arch": arch, "seed": seed, "scenario": scenario, "label": label, "method": method,
            "forget_class": 9 if scenario == "class" else None, "fairness": fairness,
            "attacks": {"fgsm": {"0.0": 70.0, str(4 / 255): adv, str(8 / 255): adv / 2}},
            "metrics": {"TA": ta}, "stats": {"hyperparameters": hyper}}


def world():
    records = []
    for arch in ("resnet18_w8", "vit_tiny"):
        for seed in (0, 1, 2, 3):              # seed 3 is no dose seed: left out
            records.append(record(arch, seed, "rl", "rl", adv=30.0 + seed, ta=70.0))
            records.append(record(arch, seed, "ft", "ft", x_log=1.0, adv=5.0))   # another method: left out
            for target in ("deviation", "spread"):
                slope = SLOPE[(arch, target)][seed] if seed < 3 else 1.0
                for m in A.dose_multipliers[1:]:
                    x = 100 * SHIFT[target] * m
                    label = DR.calibrated_label(target) if m == 1 else f"keep_gap-{target}-x{m:g}"
                    records.append(record(arch, seed, label, "keep_gap", x_log=SHIFT[target] * m,
                                          adv=30.0 + seed + slope * x, ta=70.0 - m, target=target,
                                          weight=W_STAR[target] * m))
            # not in the grid: another layer set, the random scenario
            records.append(record(arch, seed, "keep_gap-last_half", "keep_gap", x_log=-3.0, adv=99.0,
                                  layers="last_half", weight=30.0))
            records.append(record(arch, seed, "keep_gap", "keep_gap", x_log=-3.0, adv=99.0, scenario="random",
                                  weight=30.0))
    return records


def test_the_frame_holds_the_grid_relative_to_rl():
    frame = DR.dose_frame(world(), A)
    assert set(frame.seed) == {0, 1, 2} and set(frame.target) == {"deviation", "spread"}
    assert len(frame) == 2 * 3 * 2 * len(A.dose_multipliers)              # arch x seed x target x multiplier
    g = frame[(frame.arch == "resnet18_w8") & (frame.seed == 1) & (frame.target == "spread")]
    assert list(g.multiplier) == pytest.approx(list(A.dose_multipliers))
    assert list(g.weight) == pytest.approx([W_STAR["spread"] * m for m in A.dose_multipliers])
    assert g.label.iloc[0] == "rl" and list(g.label)[1:] == ["keep_gap-spread-x0.25", "keep_gap-spread-x0.5",
                                                             "keep_gap-spread", "keep_gap-spread-x2",
                                                             "keep_gap-spread-x4"]
    assert list(g.x) == pytest.approx([100 * SHIFT["spread"] * m for m in A.dose_multipliers])
    assert list(g.y) == pytest.approx([0.04 * x for x in g.x])
    assert list(g.clean) == pytest.approx([-m for m in A.dose_multipliers])
    assert (frame.layers == len(LAYERS)).all() and not (frame.y > 50).any()   # the left-out runs are absent


def test_slopes_per_seed_and_their_interval():
    frame = DR.dose_frame(world(), A)
    per_seed = DR.slopes(frame)
    for (arch, target), expected in SLOPE.items():
        got = per_seed[(per_seed.arch == arch) & (per_seed.target == target)].sort_values("seed")
        assert list(got.slope) == pytest.approx(list(expected), abs=1e-9)
        assert (got.points == len(A.dose_multipliers)).all()
    est = DR.slope_estimates(frame, A)
    e = est[("vit_tiny", "spread")]
    got = per_seed[(per_seed.arch == "vit_tiny") & (per_seed.target == "spread")].slope
    assert e == stats.seed_interval(got, A.level, A.min_seeds) and e.n == 3
    assert e.mean == pytest.approx(-0.1) and e.lo < -0.1 < e.hi and e.p < 0.05
    clean = DR.slopes(frame, "clean")
    g = clean[(clean.arch == "resnet18_w8") & (clean.target == "deviation")]
    assert list(g.slope) == pytest.approx([-1 / (100 * SHIFT["deviation"])] * 3)   # TA falls 1 point per w*


def test_fit_slope_needs_two_distinct_x():
    assert DR.fit_slope([0, 1, 2], [1, 3, 5]) == pytest.approx(2.0)
    assert math.isnan(DR.fit_slope([1, 1], [0, 5]))
    assert DR.fit_slope([0, 1, float("nan"), 2], [0, 1, 7, 2]) == pytest.approx(1.0)


def test_a_seed_without_rl_or_anchor_is_left_out():
    records = [r for r in world() if not (r["seed"] == 2 and r["label"] == "rl")
               and not (r["seed"] == 1 and r["label"] == "keep_gap-spread")]
    frame = DR.dose_frame(records, A)
    assert 2 not in set(frame.seed)
    assert set(frame[frame.seed == 1].target) == {"deviation"}


def test_attack_accuracy_and_log_epsilon():
    r = record("a", 0, "rl", "rl", x_log=0.5, adv=12.5)
    assert DR.attack_accuracy(r, "fgsm", 4) == 12.5 and math.isnan(DR.attack_accuracy(r, "pgd", 4))
    assert DR.log_epsilon(r)["layer1.0.bn1"] == pytest.approx(0.5 + math.log(2))


def test_figure_draws_each_seed_fit():
    frame = DR.dose_frame(world(), A)
    fig = DR.figure(frame, A)
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["resnet18_w8", "vit_tiny"]
    ax = axes[0]
    fits = [ln for ln in ax.lines if ln.get_color() in DR.TARGET_COLORS.values()]
    assert len(fits) == 6                                             # 2 targets x 3 seeds
    assert len(ax.collections) == 6 and sum(len(c.get_offsets()) for c in ax.collections) == 36
    ys = np.concatenate([ln.get_ydata() for ln in fits])
    assert np.isfinite(ys).all()


def test_the_dose_response_verdict_is_the_mean_slope_against_its_declared_margin():
    from fairgap_utils.book import verdicts as V
    claims = V.dose_response(world(), A)
    assert len(claims) == 1
    c = claims[0]
    raw = {p.name: {a: stats.decide(v.p_direction, v.p_equivalence, v.estimate.mean, -1) for a, v in p.per_arch.items()}
           for p in c.parts}
    # ResNet: spread +0.05 on average (against the claim); ViT: deviation 0 (equivalent), spread −0.1 (the claim)
    assert raw["spread penalty"]["vit_tiny"] == "supported"
    assert raw["deviation penalty"]["vit_tiny"] == "equivalent"
    assert raw["spread penalty"]["resnet18_w8"] == "contradicted"
    v = c.parts[1].per_arch["vit_tiny"]
    assert v.estimate.mean == pytest.approx(-0.1) and v.margin == A.dose_slope_margin and v.adjusted
    assert v.p_direction_adj > v.p_direction           # Holm over the family of four slopes (three seeds)
    assert c.verdicts == {a: stats.combine([p.per_arch[a].verdict for p in c.parts]) for a in c.verdicts}
    assert V.dose_response([r for r in world() if r["method"] != "keep_gap"], A) == []
    assert "Not computed" in V.dose_response_reading([])


def test_the_dose_response_explorer_carries_every_grid_point():
    from fairgap_utils.book import explorer
    chart = explorer.dose_explorer(world(), A)
    spec = chart.to_dict()
    assert {p["name"] for p in spec["params"]} >= {"dose_arch", "dose_quantity"}
    assert "dose" in explorer.html(chart)


@pytest.mark.parametrize("outcomes, words", [
    (["supported", "supported"], "agrees with a causal reading"),
    (["equivalent", "supported, within the noise floor"], "evidence against reading Conjecture 2 causally"),
    (["contradicted", "equivalent"], "*less* robust"),
    (["inconclusive", "supported"], "do not decide"),
])
def test_the_page_says_in_words_what_the_slopes_mean(outcomes, words):
    from types import SimpleNamespace

    from fairgap_utils.book import verdicts as V
    parts = [V.Part(f"p{i}", "", "", -1, {"net": SimpleNamespace(verdict=o)}) for i, o in enumerate(outcomes)]
    assert words in V.dose_response_reading([V.Claim("Conjecture 2 by intervention", "", parts, {}, "")])
