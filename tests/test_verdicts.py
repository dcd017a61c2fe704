"""The verdict rules on fabricated results whose effects are known by construction.

`world` builds the result records of a profile (original, Retrain and its replicates, every
method) from per-layer log-ratios to the original and per-model accuracies; each rule is
then checked on a case built to be supported, contradicted, equivalent, inconclusive, or
to have too few seeds or no noise floor.
"""
from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from fairgap_utils.book import plots, report, stats  # noqa: E402
from fairgap_utils.book import verdicts as V  # noqa: E402
from fairgap_utils.config import AnalysisConfig  # noqa: E402

A = AnalysisConfig()            # channel, all classes, FGSM 4/255, c5_k 3, collapse 0.5, 3 seeds, 95%
N_LAYERS = 6                    # thirds: depths 0-1 early, 2-3 intermediate, 4-5 last
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
METHODS = ("ft", "cf_k", "cf_k-k3", "eu_k", "eu_k-k3", "ga", "rl", "salun", "scrub", "bs", "l1_sparse")
RETRAIN_SHIFT = 0.4             # Retrain's log-ratio to the original in every layer (plus its jitter)


def fake_record(arch, seed, label, method, eps, scenario="class", TA=80.0, UA=100.0, RA=95.0, MIA=100.0,
                clean=None, adv=20.0, pgd=None, time_s=10.0, k=None, test_acc=None) -> dict:
    """One result file's content: sigma_c puts the gap eps[l] between classes 0 and 1."""
    fairness = []
    for depth, e in enumerate(eps):
        sigma = [1.0, 1.0 + float(e)] + [1.0] * 8
        fairness.append({"layer": f"norm{depth}", "depth": depth, "kind": "BatchNorm2d",
                         "sigma": {d: sigma for d in ("channel", "pooled", "sample")}})
    clean = TA if clean is None else clean
    pgd = adv - 5 if pgd is None else pgd
    return {
        "profile": "smoke", "arch": arch, "seed": seed, "scenario": scenario, "label": label, "method": method,
        "forget_class": 9 if scenario == "class" else None, "classes": CLASSES, "data_source": "fabricated",
        "metrics": {"UA": UA, "RA": RA, "TA": TA, "MIA": MIA, "test_acc_all": TA if test_acc is None else test_acc},
        "stats": {"time_s": time_s, "trainable_params": 100, "total_params": 1000, "peak_memory_mb": None,
                  "hyperparameters": {} if k is None else {"k": k}, "logs": {}},
        "attacks": {"fgsm": {0.0: clean, **{e / 255: adv for e in (1, 2, 4, 8)}},
                    "pgd": {0.0: clean, 2 / 255: pgd, 8 / 255: pgd}},
        "sizes": {"forget": 50, "retain": 450, "val": 0, "test": 200}, "fairness": fairness,
    }


def world(effect=lambda label, seed, depth: 0.0, metrics=lambda label, seed: {}, seeds=(0, 1, 2),
          archs=("net",), replicates=4, floor_sd=0.02, labels=METHODS, scenario="class", jitter_seed=0):
    """Records of a profile. `effect(label, seed, depth)`: log(ε/ε_original) of a method at a layer;
    `metrics(label, seed)`: its accuracies, times, ... (fake_record's keywords). Originals differ
    strongly between seeds (×e^0.7 per seed); Retrains never see the original: every Retrain (each
    seed's and the `replicates` more of seed seeds[0]) sits at RETRAIN_SHIFT + N(0, floor_sd) per layer
    from one common ε profile (class-wise every seed shares the split, so Retrains are exchangeable)."""
    rng = np.random.default_rng(jitter_seed)
    recs = []
    for arch in archs:
        for seed in seeds:
            base = np.linspace(0.5, 1.5, N_LAYERS) * math.exp(0.7 * seed)

            def add(label, method, log_ratio, start=base):
                k = (3 if label.endswith("-k3") else 1) if method in ("cf_k", "eu_k") else None
                kw = {"k": k, **metrics(label, seed)}
                recs.append(fake_record(arch, seed, label, method, start * np.exp(log_ratio), scenario, **kw))
            common = np.linspace(0.5, 1.5, N_LAYERS)
            add("original", "original", np.zeros(N_LAYERS))
            add("retrain", "retrain", RETRAIN_SHIFT + rng.normal(0, floor_sd, N_LAYERS), common)
            if seed == seeds[0]:
                for i in range(1, replicates + 1):
                    add(f"retrain-r{i}", "retrain", RETRAIN_SHIFT + rng.normal(0, floor_sd, N_LAYERS), common)
            for label in labels:
                add(label, label.split("-")[0], np.array([effect(label, seed, d) for d in range(N_LAYERS)]))
    return recs


def trio(value_by_seed):
    """An effect on RL, SalUn and SCRUB only: value_by_seed(seed) in every layer."""
    return lambda label, seed, depth: value_by_seed(seed) if label in V.APPROXIMATE else 0.0


# --------------------------------------------------------------------------- stats

def test_seed_interval_is_the_student_t_interval():
    e = stats.seed_interval([1, 2, 3, 4], level=0.95, min_n=3)
    half = 3.182446 * np.std([1, 2, 3, 4], ddof=1) / 2      # t(0.975, 3 df) from a table
    assert (e.mean, e.n) == (2.5, 4)
    assert e.lo == pytest.approx(2.5 - half, abs=1e-5) and e.hi == pytest.approx(2.5 + half, abs=1e-5)
    assert e.text(1) == "+2.5 [+0.4, +4.6] (4 seeds)"


def test_too_few_seeds_draw_no_interval_and_say_so():
    one, two = stats.seed_interval([0.7], min_n=3), stats.seed_interval([0.7, 0.9], min_n=3)
    assert not one.has_interval and math.isnan(one.lo) and one.text(1) == "+0.7 (one seed)"
    assert not two.has_interval and two.text(1) == "+0.8 (2 seeds: too few for an interval)"
    assert math.isnan(two.p) and math.isnan(stats.tost_p(two, 10.0))
    assert stats.decide(two.p, stats.tost_p(two, 10.0), two.mean, +1) == "inconclusive"
    assert stats.seed_interval([], min_n=3).text() == "n/a (no seeds)"


def test_p_values_are_scipys_t_tests():
    from scipy import stats as sps
    values = [0.4, 1.9, 0.7, 1.2]
    e = stats.seed_interval(values)
    assert e.p == pytest.approx(sps.ttest_1samp(values, 0).pvalue, rel=1e-10)
    lower = sps.ttest_1samp(values, -1.5, alternative="greater").pvalue     # H0: mean <= -1.5
    upper = sps.ttest_1samp(values, 1.5, alternative="less").pvalue         # H0: mean >= +1.5
    assert stats.tost_p(e, 1.5) == pytest.approx(max(lower, upper), rel=1e-10)
    assert upper > lower                                                     # the mean 1.05 is nearer +1.5
    assert math.isnan(stats.tost_p(e, float("nan"))) and math.isnan(stats.tost_p(e, 0.0))


def test_the_noise_floor_is_the_pooled_retrain_sd_at_its_lower_confidence_bound():
    from scipy import stats as sps
    v = np.random.default_rng(1).normal(size=7)
    sd = v.std(ddof=1)
    assert stats.pooled_sd(v) == (pytest.approx(sd), 6)
    assert stats.noise_floor(v, bound=None) == pytest.approx(math.sqrt(2) * sd)
    assert stats.noise_floor(v) == pytest.approx(math.sqrt(2) * sd * math.sqrt(6 / sps.chi2.ppf(0.95, 6)))
    assert stats.noise_floor(v) < stats.noise_floor(v, bound=None)
    # pooled within groups: (0, 1) and (10, 12) -> sum of squares 0.5 + 2 over 2 degrees of freedom
    assert stats.pooled_sd([0, 10, 1, 12], groups=[0, 1, 0, 1]) == (pytest.approx(math.sqrt(2.5 / 2)), 2)
    assert math.isnan(stats.noise_floor([3.0])) and stats.pooled_sd([3.0])[1] == 0


@pytest.mark.parametrize("values, direction, margin, expected", [
    ([5, 6, 7], +1, 1.0, "supported"),
    ([-5, -6, -7], +1, 1.0, "contradicted"),
    ([-5, -6, -7], -1, 1.0, "supported"),
    ([0.1, -0.1, 0.05], +1, 1.0, "equivalent"),
    ([0.3, 0.31, 0.32], +1, 1.0, "supported, within the noise floor"),      # excludes 0, inside the floor
    ([-0.3, -0.31, -0.32], +1, 1.0, "contradicted, within the noise floor"),  # never plain "equivalent"
    ([-3, 4, 1], +1, 0.5, "inconclusive"),
    ([0.5, -0.3, 0.2], +1, 0.5, "inconclusive"),       # mean 0.13 inside ±0.5, but the interval crosses it
    ([0.1, -0.1, 0.05], +1, float("nan"), "inconclusive"),   # no margin: never equivalent
    ([5, 6, 7], 0, 1.0, "different"),
    ([0.3, 0.31, 0.32], 0, 1.0, "different, within the noise floor"),
])
def test_four_outcomes(values, direction, margin, expected):
    e = stats.seed_interval(values)
    assert stats.decide(e.p, stats.tost_p(e, margin), e.mean, direction) == expected


def test_an_opposite_effect_inside_the_margin_is_not_equivalent():
    """C4's gap part on the three-seed results: both intervals exclude 0 against the claim, inside the floor."""
    e = stats.seed_interval([-2.51, -2.81, -3.11])
    assert e.hi < 0 and e.lo > -11.6
    assert stats.decide(e.p, stats.tost_p(e, 11.6), e.mean, +1) == "contradicted, within the noise floor"


def test_combination_rules():
    assert stats.combine(["supported", "supported"]) == "supported"
    assert stats.combine(["supported", "contradicted"]) == "contradicted"
    assert stats.combine(["equivalent", "equivalent"]) == "equivalent"
    assert stats.combine(["equivalent", "contradicted, within the noise floor"]) == "equivalent"
    assert stats.combine(["contradicted, within the noise floor"]) == "contradicted, within the noise floor"
    assert stats.combine(["supported", "equivalent"]) == "inconclusive"
    assert stats.as_claimed("equivalent", 0) == "supported" and stats.as_claimed("different", 0) == "contradicted"
    assert stats.as_claimed("equivalent", +1) == "equivalent"
    assert stats.overall({"a": "supported", "b": "supported"}) == "supported"
    assert stats.overall({"a": "supported", "b": "inconclusive"}) == "differs by architecture"


def test_holm_adjustment():
    adj = stats.holm([0.01, 0.04, 0.03, float("nan")])
    assert adj[0] == pytest.approx(0.03) and adj[2] == pytest.approx(0.06) and adj[1] == pytest.approx(0.06)
    assert math.isnan(adj[3])


def test_partial_spearman_removes_a_common_cause_and_fisher_averages_on_z():
    rng = np.random.default_rng(0)
    z = np.arange(60.0)
    x, y = z + rng.normal(0, 3, 60), z + rng.normal(0, 3, 60)
    assert stats.spearman(x, y) > 0.9 and abs(stats.partial_spearman(x, y, z)) < 0.3
    e = stats.fisher_interval([0.5, 0.5, 0.5])
    assert e.mean == pytest.approx(0.5) and e.lo == pytest.approx(0.5) and e.n == 3
    assert stats.fisher_interval([0.2, 0.6, 0.4]).mean == pytest.approx(np.tanh(np.mean(np.arctanh([0.2, 0.6, 0.4]))))


def test_bootstrap_refuses_fewer_than_ten_units():
    assert all(map(math.isnan, report.bootstrap_ci([1.0, 2.0, 3.0])))
    assert all(map(math.isfinite, report.bootstrap_ci(np.arange(10.0))))


# --------------------------------------------------------------------------- tables

def test_model_frame_re_references_to_the_own_original():
    recs = world(effect=lambda label, seed, d: (0.1 if d < 3 else -0.1) if label == "rl" else 0.0)
    f = report.model_frame(recs, A)
    rl = f[f.label == "rl"]
    assert np.allclose(rl.d_own, 0) and np.allclose(rl.rise_share, 0.5)
    assert np.allclose(rl.concentration, 0.0)                      # |0.1| everywhere
    ret = f[f.label == "retrain"]
    assert np.allclose(ret.d_retrain, 0) and np.allclose(f[f.label == "original"].d_own, 0)
    assert set(f[f.replicate].label) == {"retrain-r1", "retrain-r2", "retrain-r3", "retrain-r4"}


def test_margin_is_the_pooled_retrain_spread_of_the_quantity_behind_it():
    recs = world(floor_sd=0.05)
    f = report.model_frame(recs, A)
    retrains = f[f.method == "retrain"]
    assert len(retrains) == 7                                        # 3 seeds' Retrains + 4 replicates
    floors = report.noise_floors(f, ["d_own", "concentration"], A, "class")
    # d_own = log ε − log ε_original: its floor is that of the layer-mean log ε, over every Retrain
    assert floors.loc["net", "d_own"] == pytest.approx(stats.noise_floor(retrains.log_eps, None, A.floor_bound))
    assert floors.loc["net", "n:d_own"] == 7
    assert not np.isclose(retrains.d_own.std(), retrains.log_eps.std())   # the originals differ by seed
    # concentration (absolute values per layer) only between Retrains of one original: seed 0's five
    seed0 = retrains[retrains.seed == 0]
    assert floors.loc["net", "concentration"] == pytest.approx(stats.noise_floor(seed0.concentration))
    assert floors.loc["net", "n:concentration"] == 5


def test_random_forgetting_pools_only_within_a_seed_and_ua_class_wise_is_declared():
    f = report.model_frame(world(scenario="random", replicates=1), A, "random")
    floors = report.noise_floors(f, ["d_own", "UA"], A, "random")
    assert floors.loc["net", "n:d_own"] == 2 and math.isnan(floors.loc["net", "d_own"])   # fewer than 3
    c = report.noise_floors(report.model_frame(world(), A), ["UA", "MIA", "TA"], A, "class")
    assert c.loc["net", "UA"] == A.margin_ua_class and c.loc["net", "n:UA"] == -1
    assert c.loc["net", "MIA"] == A.margin_mia_class and c.loc["net", "TA"] == 0


# --------------------------------------------------------------------------- C1

def test_c1_supported_with_the_exact_effect_despite_differing_originals():
    c = V.claim_c1(world(effect=trio(lambda s: 0.2 + 0.01 * s)), A)
    v = c.parts[0].per_arch["net"]
    assert c.verdicts == {"net": "supported"} and c.overall == "supported"
    assert v.estimate.mean == pytest.approx(21.0) and v.estimate.n == 3 and math.isfinite(v.margin)


def test_c1_contradicted():
    assert V.claim_c1(world(effect=trio(lambda s: -0.2 - 0.01 * s)), A).verdicts["net"] == "contradicted"


def test_c1_equivalent_within_the_noise_floor():
    c = V.claim_c1(world(effect=trio(lambda s: 0.001 * (s - 1)), floor_sd=0.05), A)
    assert c.verdicts["net"] == "equivalent"
    assert "Retrains" in c.parts[0].per_arch["net"].margin_text()


def test_c1_inconclusive():
    c = V.claim_c1(world(effect=trio(lambda s: (0.3, -0.3, 0.05)[s]), floor_sd=0.01), A)
    assert c.verdicts["net"] == "inconclusive"
    assert "seeds would" in V.what_would_change(c.parts[0].per_arch["net"])


def test_page_text_is_generated_from_the_verdicts():
    c = V.claim_c1(world(effect=trio(lambda s: 0.2 + 0.01 * s)), A)
    md = V.claim_markdown(c)
    assert "**supported**" in md and "(3 seeds)" in md and "7 Retrains" in md and "direction p =" in md
    rules = V.rules_text(AnalysisConfig(attack_eps=8, min_seeds=5))
    assert "FGSM at 8/255" in rules and "fewer than 5 seeds" in rules and "analysis_plan" in rules


def test_without_enough_retrains_there_is_no_noise_floor_and_never_equivalent():
    recs = [r for r in world(effect=trio(lambda s: 0.001 * (s - 1)), replicates=0)
            if not (r["method"] == "retrain" and r["seed"] > 0)]          # one Retrain in all
    c = V.claim_c1(recs, A)
    v = c.parts[0].per_arch["net"]
    assert v.verdict == "inconclusive" and v.margin_text() == "no noise floor"
    assert "no noise floor" in V.scorecard([c]).iloc[0]["margin"]


def test_c1_with_one_seed_or_two_gives_no_interval():
    one = V.claim_c1(world(effect=trio(lambda s: 0.3), seeds=(0,)), A)
    v = one.parts[0].per_arch["net"]
    assert v.verdict == "inconclusive" and v.estimate.seeds_text == "one seed" and not v.estimate.has_interval
    assert "at least 3 seeds" in V.what_would_change(v)
    two = V.claim_c1(world(effect=trio(lambda s: 0.3), seeds=(0, 1)), A)
    assert two.parts[0].per_arch["net"].estimate.seeds_text == "2 seeds: too few for an interval"
    card = V.scorecard([one])
    assert card.iloc[0]["seeds"] == 1 and "[" not in card.iloc[0]["effect [95% interval]"]


def test_overall_verdict_only_where_architectures_agree():
    recs = (world(effect=trio(lambda s: 0.2 + 0.01 * s), archs=("a",))
            + world(effect=trio(lambda s: -0.2 - 0.01 * s), archs=("b",)))
    c = V.claim_c1(recs, A)
    assert c.verdicts == {"a": "supported", "b": "contradicted"} and c.overall == "differs by architecture"
    assert "supported on a; contradicted on b" in V.plain_summary([c])


def test_c1_reports_the_distance_to_retrain_against_the_noise_floor():
    # RL lands 0.2 above the common ε profile whatever its seed's original (which sits 0.7·seed above it):
    # 0.2 below Retrain's 0.4 in every seed, while its change from its own original differs by seed
    c = V.claim_c1(world(effect=trio(lambda s: 0.2 - 0.7 * s + 0.001 * s), floor_sd=0.01), A)
    assert c.detail.loc[("net", "RL"), "distance to Retrain"] == "beyond the noise floor"
    # every layer rises on seed 0 only: 100, 0, 0 %, the interval cut to 0..100, whole percents
    assert c.detail.loc[("net", "RL"), "layers that rise (%)"] == "+33 [+0, +100] (3 seeds)"


# --------------------------------------------------------------------------- C2

EFFECT_BY_LABEL = {lbl: 0.05 * i for i, lbl in enumerate(METHODS)}


def c2_world(collapse_ga=False, reverse_at_8=False):
    """Within each seed a higher ε goes with a lower adversarial accuracy (larger drop); between
    seeds the opposite (seeds with larger originals are more robust): a Simpson's pattern."""
    def effect(label, seed, depth):
        return EFFECT_BY_LABEL.get(label, 0.0)

    def metrics(label, seed):
        # a Retrain sits RETRAIN_SHIFT above the common profile, which lies 0.7·seed below the seed's original
        e = EFFECT_BY_LABEL.get(label, RETRAIN_SHIFT - 0.7 * seed if label.startswith("retrain") else 0.0)
        adv = 40 - 40 * e + 30 * seed
        m = {"TA": 80.0, "clean": 80.0 + 0.1 * (len(label) % 7), "adv": adv}
        if collapse_ga and label == "ga":
            m.update(TA=20.0, clean=21.0, adv=20.0)       # collapsed: near the floor whatever its gap
        return m
    recs = world(effect=effect, metrics=metrics)
    if reverse_at_8:   # at 8/255 the within-seed pattern is reversed
        for r in recs:
            acc = r["attacks"]["fgsm"]
            acc[8 / 255] = 200 - acc[4 / 255]
    return recs


def test_c2_is_within_seed_and_not_fooled_by_seed_means():
    recs = c2_world()
    f = report.model_frame(recs, A)
    pooled = stats.spearman(f[~f.replicate].eps_mean, f[~f.replicate]["drop"])
    per = V.c2_per_seed(recs, A)
    c = V.claim_c2(recs, A)
    assert pooled < 0 and (per["drop"] > 0.9).all() and (per["adv"] < -0.9).all()
    assert c.verdicts == {"net": "supported"}
    assert c.parts[0].name == V.C2_MEASURES["partial"][1]
    assert c.detail.loc[("net", V.C2_MEASURES["partial"][1]), "carries the verdict"] == "yes"
    assert c.detail.loc[("net", V.C2_MEASURES["drop"][1]), "carries the verdict"] == "no (shown)"


def test_c2_leaves_collapsed_models_out_and_shows_them_in_a_sensitivity_row():
    recs = c2_world(collapse_ga=True)
    per, per_all = V.c2_per_seed(recs, A), V.c2_per_seed(recs, A, include_collapsed=True)
    assert (per.collapsed_out == 1).all() and (per_all.models == per.models + 1).all()
    assert (per["drop"] > per_all["drop"]).all()
    detail = V.claim_c2(recs, A).detail
    assert detail.loc[("net", V.C2_MEASURES["partial"][1]), "collapsed left out"] == "3"


def test_c2_uses_the_declared_attack_and_eps():
    recs = c2_world(reverse_at_8=True)
    assert V.claim_c2(recs, A).verdicts["net"] == "supported"
    assert V.claim_c2(recs, AnalysisConfig(attack_eps=8)).verdicts["net"] == "contradicted"


def test_c2_grid_is_adjusted_for_multiplicity_and_marks_the_headline():
    grid = V.c2_grid(c2_world(), A)
    assert len(grid) == 3 * 2 * 6                                  # σ × class set × (4 FGSM + 2 PGD ε)
    assert (grid["p (Holm)"] >= grid.p - 1e-12).all()
    head = grid[grid.headline]
    assert len(head) == 1 and head.iloc[0]["ε×255"] == 4 and head.iloc[0].attack == "fgsm"


def test_c2_rests_on_the_partial_correlation_so_clean_accuracy_cannot_fake_it():
    """The methods with the largest ε lose clean accuracy, and adversarial accuracy follows clean accuracy
    alone (a fixed share of it, plus noise): the raw ρ(ε, drop) looks like the claim, the partial does not."""
    rng = np.random.default_rng(5)

    def metrics(label, seed):
        e = EFFECT_BY_LABEL.get(label, RETRAIN_SHIFT - 0.7 * seed if label.startswith("retrain") else 0.0)
        clean = 80.0 - 30 * e
        return {"TA": 80.0, "clean": clean, "adv": 0.25 * clean + rng.normal(0, 1.0)}
    recs = world(effect=lambda label, seed, depth: EFFECT_BY_LABEL.get(label, 0.0), metrics=metrics,
                 seeds=tuple(range(6)))
    per = V.c2_per_seed(recs, A)
    assert (per["adv"] < -0.8).all()                  # raw: higher ε, lower adversarial accuracy, every seed
    c = V.claim_c2(recs, A)
    assert c.verdicts["net"] != "supported"
    assert abs(c.parts[0].per_arch["net"].estimate.mean) < 0.5
    raw = c.detail.loc[("net", V.C2_MEASURES["adv"][1])]
    assert raw["outcome (unadjusted)"] == "supported" and raw["carries the verdict"] == "no (shown)"


# --------------------------------------------------------------------------- C3

def late(value):
    return lambda seed, depth: value(seed) if depth >= 2 else 0.0


def test_c3_supported_when_change_concentrates_later_than_ft():
    def effect(label, seed, depth):
        if label in V.APPROXIMATE:
            return (0.3 + 0.02 * seed) if depth >= 2 else 0.0
        return 0.05 if label == "ft" else 0.0            # FT: the same small change everywhere
    c = V.claim_c3(world(effect=effect), A)
    assert c.verdicts["net"] == "supported"
    assert "CF-k" not in set(c.detail.index.get_level_values("method"))


def test_c3_with_ft_showing_the_same_pattern_is_not_supported():
    def effect(label, seed, depth):
        if label in (*V.APPROXIMATE, "ft"):
            return (0.3 + 0.02 * seed) if depth >= 2 else 0.0
        return 0.0
    c = V.claim_c3(world(effect=effect, floor_sd=0.05), A)
    assert c.verdicts["net"] == "equivalent"
    assert "for FT +32.0" in c.notes[0]                   # the raw concentration is shown beside it


# --------------------------------------------------------------------------- C4

def c4_world(keepers_robustness_change=0.0):
    def effect(label, seed, depth):
        return (0.3 + 0.02 * seed) if label in V.APPROXIMATE else 0.0

    def metrics(label, seed):
        if label in V.APPROXIMATE:
            return {"adv": 20.0 - 10 - seed}
        if label in V.KEEPERS:
            return {"adv": 20.0 - keepers_robustness_change - seed}
        return {"adv": 20.0}
    return world(effect=effect, metrics=metrics)


def test_c4_supported_when_both_parts_are():
    c = V.claim_c4(c4_world(), A)
    assert [p.per_arch["net"].verdict for p in c.parts] == ["supported", "supported"]
    assert c.verdicts["net"] == "supported"


def test_c4_needs_the_robustness_part_too():
    c = V.claim_c4(c4_world(keepers_robustness_change=10.0), A)
    assert c.parts[0].per_arch["net"].verdict == "supported"
    assert c.parts[1].per_arch["net"].verdict != "supported" and c.verdicts["net"] != "supported"


def test_c4_leaves_cf_ks_epsilon_out_of_the_gap_part_as_fixed_by_construction():
    """CF-k's ε change is fixed by construction: a CF-k that barely moves ε cannot help the gap part."""
    def effect(label, seed, depth):
        return {"bs": 0.3 + 0.02 * seed}.get(label, 0.3 + 0.02 * seed if label in V.APPROXIMATE else 0.0)
    c = V.claim_c4(world(effect=effect), A)
    gap = c.parts[0].per_arch["net"]
    assert gap.estimate.mean == pytest.approx(0.0, abs=1e-9)     # RL/SalUn/SCRUB vs BS alone: no difference
    assert "BS" in c.parts[0].measured_as and "CF-k" not in c.parts[0].measured_as
    assert any("by construction" in n and "CF-k" in n for n in c.notes)
    assert "by construction" in c.detail.loc[("net", "CF-k"), "|Δε| (log-ratio ×100)"]


def test_the_scorecard_is_holm_adjusted_as_one_family():
    recs = c4_world()
    raw = V.claim_c4(recs, A)
    claims = V.all_claims(recs, A)
    c4 = next(c for c in claims if c.claim == "C4")
    cells = [v for c in claims for p in c.parts for v in p.per_arch.values()]
    assert all(v.adjusted for v in cells)
    p_raw = [v.p_direction for c in claims for p in c.parts for v in p.per_arch.values()] + \
        [v.p_equivalence for c in claims for p in c.parts for v in p.per_arch.values()]
    assert np.nanmin([v.p_direction_adj for v in cells]) >= np.nanmin(p_raw)
    v_raw, v_adj = raw.parts[0].per_arch["net"], c4.parts[0].per_arch["net"]
    assert v_adj.p_direction_adj == pytest.approx(
        stats.holm(p_raw)[p_raw.index(v_raw.p_direction)]) and v_adj.p_direction_adj > v_raw.p_direction
    assert "Holm-adjusted" in v_adj.reason and "unadjusted" in v_raw.reason
    card = V.scorecard(claims)
    assert {"p direction (Holm)", "p equivalence (Holm)"} <= set(card.columns)


# --------------------------------------------------------------------------- C5

def c5_world(ta_k3=0.0, ta_k1=0.0, time_k3=1.0, ua_k3=100.0):
    rng = np.random.default_rng(3)
    retrain_ta = {}

    def metrics(label, seed):
        if label.startswith("retrain"):
            retrain_ta.setdefault((label, seed), 80 + rng.normal(0, 2))
            return {"TA": retrain_ta[(label, seed)], "time_s": 100.0}
        if label == "cf_k-k3":
            return {"TA": 80 + ta_k3 + 0.1 * seed, "time_s": time_k3 * (30 if seed == 2 else 1), "UA": ua_k3}
        if label == "cf_k":
            return {"TA": 80 + ta_k1, "time_s": 0.5}
        return {"TA": 80.0, "time_s": 10.0}
    recs = world(metrics=metrics)
    for r in recs:   # Retrain's TA in the main runs as well, so the differences are known
        if r["label"] == "retrain":
            r["metrics"]["TA"] = 80.0
    return recs


def test_c5_supported_within_the_ta_noise_floor_and_cheaper_than_ft_by_median_time():
    c = V.claim_c5(c5_world(ta_k3=0.0), A)
    assert c.verdicts["net"] == "supported"       # seed 2's 30× inflated time does not move the median
    assert [p.name for p in c.parts] == ["TA − TA_Retrain", "UA − UA_Retrain"]
    ua = c.parts[1].per_arch["net"]
    assert ua.verdict == "equivalent" and ua.margin_text() == f"±{A.margin_ua_class:.2f} (declared)"


def test_c5_judges_the_declared_k_only():
    c = V.claim_c5(c5_world(ta_k3=-20.0, ta_k1=0.0), A)     # k = 1 would look perfect: not chosen
    assert c.verdicts["net"] == "contradicted"
    assert c.detail.index.get_level_values("method")[0] == "CF-k (k3)"


def test_c5_not_cheaper_is_contradicted_and_ua_enters_when_informative():
    assert V.claim_c5(c5_world(time_k3=50.0), A).verdicts["net"] == "contradicted"
    c = V.claim_c5(c5_world(ua_k3=90.0), A)
    assert [p.name for p in c.parts] == ["TA − TA_Retrain", "UA − UA_Retrain"]


# --------------------------------------------------------------------------- beyond the paper

def beyond_world(new_effect, labels=(*METHODS, "keep_gap"), new_adv=lambda seed: 20.0 + 0.01 * seed):
    """RL moves ε by 0.2 and loses 5 points of FGSM accuracy; the new method moves ε by `new_effect(seed)`
    with FGSM accuracy `new_adv(seed)`; Retrain's accuracy is 20 (its replicates scatter around it)."""
    rng = np.random.default_rng(7)

    def effect(label, seed, depth):
        return {"rl": 0.2 + 0.01 * seed}.get(label, new_effect(seed) if label.startswith("keep_gap") else 0.0)

    def metrics(label, seed):
        if label.startswith("retrain-r"):
            return {"adv": 20.0 + rng.normal(0, 1.0)}
        if label.startswith("keep_gap"):
            return {"adv": new_adv(seed), "time_s": 13.0}
        return {"adv": 15.0 - 0.1 * seed} if label == "rl" else {}
    return world(effect=effect, metrics=metrics, labels=labels)


def test_beyond_the_paper_positive():
    out = V.beyond_the_paper(beyond_world(lambda s: 0.001 * s), analysis=A)
    assert len(out) == 1
    c = out[0]
    outcomes = {p.name: p.per_arch["net"].verdict for p in c.parts}
    assert outcomes == {"keeps ε at its original's": "supported", "forgets: UA − UA_Retrain": "equivalent",
                        "forgets: MIA − MIA_Retrain": "equivalent", "more robust than RL": "supported",
                        "robust like Retrain": "equivalent"}
    assert c.verdicts["net"] == "supported"
    assert all(v.adjusted for p in c.parts for v in p.per_arch.values())        # Holm over its own family
    assert any("1.30× RL's" in n for n in c.notes)                                # time: 13 s against 10 s


def test_beyond_the_paper_negative_reads_as_plainly():
    c = V.beyond_the_paper(beyond_world(lambda s: -0.3 - 0.01 * s), analysis=A)[0]
    assert {p.name: p.per_arch["net"].verdict for p in c.parts}["keeps ε at its original's"] == "contradicted"
    assert c.verdicts["net"] == "contradicted"
    assert "contradicted" in V.plain_summary([c])


def test_beyond_the_paper_judges_robustness_against_rl_and_retrain():
    c = V.beyond_the_paper(beyond_world(lambda s: 0.001 * s, new_adv=lambda s: 15.0 - 0.1 * s + 0.001 * s),
                           analysis=A)[0]
    outcomes = {p.name: p.per_arch["net"].verdict for p in c.parts}
    assert outcomes["more robust than RL"] != "supported"          # exactly RL's accuracy
    assert outcomes["robust like Retrain"] == "different"           # 5 points below Retrain's
    assert c.verdicts["net"] == "contradicted"


def test_a_variant_of_the_new_method_is_judged_on_its_own():
    def effect(seed):
        return 0.001 * seed
    records = beyond_world(effect, labels=(*METHODS, "keep_gap", "keep_gap-spread"))
    for r in records:                        # the variant moves ε far from its original
        if r["label"] == "keep_gap-spread":
            for layer in r["fairness"]:
                layer["sigma"] = {d: [1.0, 3.0] + [1.0] * 8 for d in layer["sigma"]}
    default = V.beyond_the_paper(records, analysis=A)[0]
    variant = V.beyond_the_paper(records, analysis=A, label="keep_gap-spread")[0]
    eps = "keeps ε at its original's"
    assert {p.name: p.per_arch["net"].verdict for p in default.parts}[eps] == "supported"
    assert {p.name: p.per_arch["net"].verdict for p in variant.parts}[eps] != "supported"
    assert variant.claim.startswith("KeepGap (spread)") and "KeepGap (spread) minus RL" in variant.parts[0].measured_as
    assert V.beyond_the_paper(records, analysis=A, label="keep_gap-other") == []


def test_the_new_methods_weight_and_penalty_share_are_reported():
    records = beyond_world(lambda s: 0.001 * s)
    for r in records:
        if r["label"] == "keep_gap":
            r["stats"]["hyperparameters"]["weight"] = 30.0
            r["stats"]["logs"]["penalty_share_per_epoch"] = [0.08 + 0.01 * r["seed"], 0.05]
    c = V.beyond_the_paper(records, analysis=A)[0]
    assert any("penalty weight 30" in n and "8.0%–10.0%" in n for n in c.notes)


def test_beyond_the_paper_without_the_method_is_empty():
    assert V.beyond_the_paper(world(), analysis=A) == []


# --------------------------------------------------------------------------- SalUn table, figures

def test_salun_table_says_one_seed_and_shows_the_published_numbers():
    one = V.salun_table(world(seeds=(0,), scenario="random", replicates=0))
    assert one.loc[("net", "RL"), ("this run", "seeds")] == "one seed"
    assert "±" not in one.loc[("net", "RL"), ("this run", "UA")]
    published = {"Retrain": ["5.24", "100.00", "94.26", "12.88", "0.00"],      # SalUn, ICLR 2024, Table 1
                 "RL": ["7.61", "99.67", "92.83", "37.36", "7.15"]}
    for method, row in published.items():
        assert list(one.loc[("net", method), "SalUn Table 1"]) == row
    assert list(one.loc[("net", "CF-k"), "SalUn Table 1"]) == ["—"] * 5
    three = V.salun_table(world(scenario="random", replicates=0))
    assert "±" in three.loc[("net", "SalUn"), ("this run", "TA")]
    recs = world(seeds=(0,), scenario="random", replicates=0)
    for r in recs:           # the default runs at 5 epochs, the k-variants at 7: only the default runs are named
        r["stats"]["hyperparameters"].update(epochs=7 if "-" in r["label"] else 5, lr=0.01)
    notes = V.salun_protocol_notes(recs)
    assert "weight decay" in notes and "fabricated" in notes
    line = next(ln for ln in notes.splitlines() if ln.startswith("- **Unlearning**"))
    assert "RL 5 epochs at lr 0.01" in line and "(k3)" not in line and "7 epochs" not in line


@pytest.mark.parametrize("seeds", [(0, 1, 2), (0,)])
def test_claim_figure_has_units_seeds_and_verdicts(seeds):
    recs = world(effect=trio(lambda s: 0.2 + 0.01 * s), seeds=seeds)
    claims = [V.claim_c1(recs, A), V.claim_c4(recs, A)]
    fig = plots.claim_effects(claims)
    assert fig.get_figwidth() == pytest.approx(plots.BOOK_WIDTH)
    axes = [ax for ax in fig.axes if ax.get_xlabel()]
    assert len(axes) == 3 and all("(" in ax.get_xlabel() for ax in axes)
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert ("3 seeds" if len(seeds) == 3 else "one seed") in texts
    plt.close(fig)


def test_layer_figures_draw_from_the_tables():
    recs = world(effect=trio(lambda s: 0.2 + 0.01 * s))
    lay = report.layer_frame(recs, "channel", "all")
    floors = report.layer_noise_floor(lay, 3)
    assert floors.floor.notna().all() and (floors.n_retrains == 7).all()    # pooled over every Retrain
    ax = plots.log_ratio_heatmap(lay, "net")
    assert ax.images[0].norm.vmin == -ax.images[0].norm.vmax        # centred at 0
    ax = plots.retrain_distance_by_layer(lay, floors, "net", ["rl", "ft"])
    assert [line.get_label() for line in ax.get_lines()] == ["rl", "ft"]              # one line per method
    assert {len(line.get_xdata()) for line in ax.get_lines()} == {lay[lay.arch == "net"].layer.nunique()}
    assert len(ax.collections) == 1                                                   # the noise-floor band
    thirds = V.thirds_table(recs, A)
    ax = plots.thirds_bars(thirds, "net")
    assert len(ax.patches) == len(thirds[thirds.arch == "net"])                       # a bar per method and third
    assert ax.get_legend_handles_labels()[1] == ["early", "intermediate", "last"]
    fig = plots.k_sweep(report.k_sweep_frame(recs, A), "net", [("TA", "TA (%)", True), ("time_s", "time (s)", False)])
    assert [a.get_ylabel() for a in fig.axes] == ["TA (%)", "time (s)"]
    labels = [[line.get_label() for line in a.get_lines()] for a in fig.axes]
    assert labels[0][-1] == "Retrain" and "Retrain" not in labels[1]                  # Retrain's line where asked
    ax = plots.c2_scatter(report.model_frame(recs, A), "net")
    assert len(ax.get_lines()) == len({r["seed"] for r in recs})                      # a least-squares line per seed
    ax = plots.correlation_grid(V.c2_grid(c2_world(), A), "net")
    assert ax.images[0].get_array().shape == (6, 6) and ax.get_yticklabels()[0].get_text() == "FGSM 1/255"
    plt.close("all")


# --------------------------------------------------------------------------- numbers on the pages, by hand
# Each expected text below is computed here from the fabricated inputs (scipy's t-interval, numpy), never
# by the function under test: a changed scale factor, direction or number of decimals fails.

def t_text(values, digits: int) -> str:
    """'+m [lo, hi] (n seeds)' of the 95% Student-t interval of `values`, from scipy.stats (true minus)."""
    from scipy import stats as sps
    v = np.asarray(values, float)
    m, se = v.mean(), sps.sem(v)
    lo, hi = sps.t.interval(0.95, len(v) - 1, loc=m, scale=se) if se > 0 else (m, m)

    def f(x):
        return f"{x:+.{digits}f}".replace("-", "−")
    return f"{f(m)} [{f(lo)}, {f(hi)}] ({len(v)} seeds)"


def layer_mean_log_eps(record) -> float:
    """The mean over layers of log ε, ε = max − min of the class sigmas (all classes), from a record."""
    return float(np.mean([math.log(max(L["sigma"]["channel"]) - min(L["sigma"]["channel"]))
                          for L in record["fairness"]]))


def test_p_values_print_three_decimals_and_a_bound_below_one_in_a_thousand():
    assert [V._p(p) for p in (0.5, 0.0123, 0.001, 0.00099, float("nan"))] == \
        ["0.500", "0.012", "0.001", "< 0.001", "n/a"]


@pytest.mark.parametrize("lo, hi, expected", [
    (-1.0, 1.5, "within the noise floor"),       # a negative lower bound strictly inside −2
    (-2.0, 1.5, "undetermined"),                 # on the margin is not inside it
    (-1.0, 2.0, "undetermined"),
    (-2.5, 1.0, "undetermined"),                 # crosses −2
    (2.5, 3.0, "beyond the noise floor"),
    (-4.0, -2.5, "beyond the noise floor"),
    (2.0, 3.0, "undetermined"),                  # touches the margin from outside
    (-3.0, -2.0, "undetermined"),                # touches −margin from outside
])
def test_versus_floor_boundaries(lo, hi, expected):
    est = stats.Estimate((lo + hi) / 2, lo, hi, 3, 1.0, 0.5, 0.95, 3)
    assert V.versus_floor(est, 2.0) == expected
    assert V.versus_floor(est, float("nan")) == "no noise floor"


def test_own_change_table_numbers_by_hand():
    from scipy import stats as sps
    recs = world(effect=trio(lambda s: 0.2 + 0.01 * s), floor_sd=0.05)
    table = V.own_change_table(report.model_frame(recs, A), A)
    retrains = [layer_mean_log_eps(r) for r in recs if r["method"] == "retrain"]   # 3 seeds + 4 replicates
    floor = math.sqrt(2) * np.std(retrains, ddof=1) * math.sqrt(6 / sps.chi2.ppf(0.95, 6))
    row = table.loc[("net", "RL")]
    assert row["noise floor"] == f"±{100 * floor:.1f}"
    assert row["change from own original"] == t_text([20.0, 21.0, 22.0], 1)
    own_retrain = {r["seed"]: layer_mean_log_eps(r) for r in recs if r["label"] == "retrain"}
    vs = [100 * (layer_mean_log_eps(r) - own_retrain[r["seed"]]) for r in recs if r["label"] == "rl"]
    assert row["vs Retrain"] == t_text(vs, 1)


def test_c3_notes_give_the_concentrations_of_the_trio_and_of_ft():
    def effect(label, seed, depth):
        if label in V.APPROXIMATE:
            return (0.3 + 0.02 * seed) if depth >= 2 else 0.0
        return 0.05 if label == "ft" else 0.0
    c = V.claim_c3(world(effect=effect), A)
    # later − early: 0.3 + 0.02·seed for the trio, 0 for FT (the same change in every layer), ×100
    trio_text = t_text([30.0, 32.0, 34.0], 1)
    assert c.notes[0].startswith(f"net: later − early for RL/SalUn/SCRUB {trio_text}, for FT +0.0")


def test_c4_numbers_by_hand():
    recs = c4_world()
    c = V.claim_c4(recs, A)
    # |Δε| of RL: 100 · |0.3 + 0.02·seed|
    assert c.detail.loc[("net", "RL"), "|Δε| (log-ratio ×100)"] == t_text([30.0, 32.0, 34.0], 1)
    own_retrain = {r["seed"]: layer_mean_log_eps(r) for r in recs if r["label"] == "retrain"}

    def dist(label, seed):
        r = next(r for r in recs if r["label"] == label and r["seed"] == seed)
        return abs(layer_mean_log_eps(r) - own_retrain[seed])
    contrast = [100 * (np.mean([dist(m, s) for m in V.APPROXIMATE]) - dist("bs", s)) for s in (0, 1, 2)]
    assert f"RL/SalUn/SCRUB minus BS {t_text(contrast, 1)} (" in c.notes[0]


def test_c5_table_shows_the_margins_to_one_decimal():
    c = V.claim_c5(c5_world(), A)
    row = c.detail.loc[("net", "CF-k (k3)")]
    assert row["UA margin"] == f"±{A.margin_ua_class:.1f} (declared)" == "±1.0 (declared)"
    assert row["TA margin"].endswith(" (7 Retrains, lower bound)") and len(row["TA margin"].split()[0]) == 4
    assert row["TA − TA_Retrain (points)"] == t_text([0.0, 0.1, 0.2], 1)      # 80 + 0.1·seed against 80


def dose_world(clean_slopes):
    """RL and KeepGap's grid for one architecture: ε moved by 100·shift·m against RL at multiplier m, FGSM
    accuracy 30 − 0.02·x and TA 70 + clean_slopes[target][seed]·x, both exact lines in x."""
    from fairgap_utils.book import dose_response as DR
    shifts, base = {"deviation": -0.1, "spread": -0.4}, np.linspace(0.5, 1.5, N_LAYERS)
    recs = []
    for seed in A.dose_seeds:
        recs.append(fake_record("net", seed, "rl", "rl", base, TA=70.0, adv=30.0))
        for target, shift in shifts.items():
            for m in A.dose_multipliers[1:]:
                x = 100 * shift * m
                r = fake_record("net", seed, DR.calibrated_label(target) if m == 1 else f"keep_gap-{target}-x{m:g}",
                                "keep_gap", base * math.exp(shift * m), TA=70.0 + clean_slopes[target][seed] * x,
                                adv=30.0 - 0.02 * x)
                r["stats"]["hyperparameters"] = {"weight": 10.0 * m, "target": target, "layers": "all"}
                recs.append(r)
    return recs


def test_the_dose_response_notes_give_each_targets_own_clean_slope():
    slopes = {"deviation": (0.1, 0.12, 0.08), "spread": (-0.05, -0.04, -0.07)}
    c = V.dose_response(dose_world(slopes), A)[0]
    assert [p.per_arch["net"].estimate.mean for p in c.parts] == [pytest.approx(-0.02)] * 2
    for target, note in zip(("deviation", "spread"), c.notes):
        assert note.startswith(f"net, {target}: ε moved by ")
        assert f"the slope of clean accuracy (TA) on it is {t_text(slopes[target], 3)} points per unit" in note


def test_glance_has_a_row_per_claim():
    c1 = V.claim_c1(world(effect=trio(lambda s: 0.2 + 0.01 * s)), A)
    one = V.claim_c1(world(effect=trio(lambda s: 0.2 + 0.01 * s), seeds=(0,)), A)
    one.claim = "C1 on one seed"
    g = V.glance([c1, one])
    assert list(g.index) == ["C1", "C1 on one seed"] and g.loc["C1", "net"] == "supported"
    assert list(g.seeds) == ["3", "1"] and g.loc["C1", "the paper says"] == c1.statement
    assert V.glance([]).empty and V.scorecard([]).empty


def test_what_would_change_an_inconclusive_outcome_counts_the_seeds_by_hand():
    from scipy import stats as sps
    est = stats.seed_interval([-3.0, 4.0, 1.0])              # mean 2/3, sd √(37/3)

    def seeds_for(half):
        return next(n for n in range(2, 1001) if sps.t.ppf(0.975, n - 1) * est.sd / math.sqrt(n) <= half)
    no_floor = V.ArchVerdict(est, float("nan"), 0, +1, est.p, float("nan"))
    assert no_floor.verdict == "inconclusive"
    text = V.what_would_change(no_floor)
    assert f"about {seeds_for(2 / 3)} seeds would exclude 0 if the mean stayed at +0.67" in text
    assert "Retrain replicates would give a noise floor" in text
    floor = V.ArchVerdict(est, 2.0, 5, +1, est.p, stats.tost_p(est, 2.0))
    assert floor.verdict == "inconclusive"
    text = V.what_would_change(floor)
    assert f"about {seeds_for(2 / 3)} seeds would exclude 0" in text
    assert f"about {seeds_for(2 - 2 / 3)} seeds would show equivalence within ±2.00" in text
    assert "Retrain replicates" not in text                 # it has a noise floor


@pytest.mark.parametrize("archs, where", [(("a", "b"), "on both architectures"),
                                          (("a", "b", "c"), "on every architecture"), (("a",), "on a")])
def test_plain_summary_says_where(archs, where):
    c = V.claim_c1(world(effect=trio(lambda s: 0.2 + 0.01 * s), archs=archs), A)
    summary = V.plain_summary([c])
    assert f"**supported** ({where});" in summary
    numbers = "; ".join(f"{a}: {t_text([20.0, 21.0, 22.0], 2)}" for a in archs)
    assert summary.endswith(f"own-original change (log-ratio ×100): {numbers}.")


def test_claim_markdown_names_its_figure_when_it_has_one():
    c = V.claim_c1(world(effect=trio(lambda s: 0.2 + 0.01 * s)), A)
    assert V.claim_markdown(c).endswith("\n\nFigure: 03_layer_analysis (own-original heatmap).")
    c.figure = ""
    assert "Figure:" not in V.claim_markdown(c)


def test_c5_without_fts_time_is_inconclusive_but_a_failed_test_still_contradicts():
    """'Cheaper than FT' cannot be judged without FT: a supported claim becomes inconclusive, a contradicted one
    stays contradicted."""
    no_ft = [r for r in c5_world() if r["label"] != "ft"]
    assert V.claim_c5(no_ft, A).verdicts["net"] == "inconclusive"
    worse = [r for r in c5_world(ta_k3=-20.0) if r["label"] != "ft"]
    assert V.claim_c5(worse, A).verdicts["net"] == "contradicted"


def test_c5_ta_margin_is_the_retrain_ta_floor_by_hand():
    from scipy import stats as sps
    recs = c5_world()
    ta = [r["metrics"]["TA"] for r in recs if r["method"] == "retrain"]          # 3 seeds + 4 replicates
    floor = math.sqrt(2) * np.std(ta, ddof=1) * math.sqrt(6 / sps.chi2.ppf(0.95, 6))
    margin = V.claim_c5(recs, A).detail.loc[("net", "CF-k (k3)"), "TA margin"]
    assert margin == f"±{floor:.1f} (7 Retrains, lower bound)"


def test_adjust_redecides_every_verdict_after_holm():
    """Two parts at raw p = 0.03 each: supported before the adjustment, inconclusive after (Holm: 2 × 0.03)."""
    est = stats.seed_interval([1.0, 1.1, 1.3])
    parts = [V.Part(f"part {i}", "", "", +1, {"net": V.ArchVerdict(est, float("nan"), 0, +1, 0.03, float("nan"))})
             for i in (1, 2)]
    c = V.Claim("C", "", parts, {}, "")
    c.recombine()
    assert c.verdicts == {"net": "supported"}
    V.adjust([c])
    assert [p.per_arch["net"].p_direction_adj for p in parts] == [pytest.approx(0.06)] * 2
    assert c.verdicts == {"net": "inconclusive"}


def test_c4_notes_cf_ks_own_change_by_hand():
    c = V.claim_c4(world(effect=lambda label, seed, depth: 0.1 + 0.01 * seed if label == "cf_k" else 0.0), A)
    assert any(n.startswith(f"net: CF-k's |change of ε| {t_text([10.0, 11.0, 12.0], 1)} (log-ratio ×100)")
               for n in c.notes)


def test_the_dose_response_reading_of_slopes_within_the_margin():
    # every slope −0.02 exactly: significant, and inside the declared margin 0.05
    claims = V.dose_response(dose_world({"deviation": (0.1, 0.1, 0.1), "spread": (0.0, 0.0, 0.0)}), A)
    assert {v.verdict for p in claims[0].parts for v in p.per_arch.values()} == {"supported" + stats.WITHIN}
    assert "left robustness unchanged" in V.dose_response_reading(claims)


def test_runs_are_named_by_their_methods_short_names():
    """The tables' names come from each method's module (SHORT), through the plan the planner wrote: no
    second list of names to keep in step with the registry."""
    from fairgap_utils.unlearn import METHODS   # lazy: the registry imports torch
    assert {m: V.name(m) for m in METHODS} == {m: METHODS[m].short for m in METHODS}
    assert V.name("original") == "Original" and V.name("keep_gap-spread") == "KeepGap (spread)"
    assert V.name("cf_k-k3") == "CF-k (k3)" and V.name("not_a_method") == "not_a_method"
