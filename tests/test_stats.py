"""fairgap_utils.book.stats against independent computations: scipy.stats, numpy, or a hand calculation.

Every expected value here comes from somewhere else than the function under test (scipy's t and
chi-square distributions and rank correlation, a least-squares fit with numpy, or numbers worked out
in the comments), so a changed constant, operator or boundary in stats.py fails a test. Seconds in all.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as sps

from fairgap_utils.book import stats

NAN = float("nan")


def estimate(sd: float, n: int = 3, mean: float = 1.0, level: float = 0.95) -> stats.Estimate:
    """An Estimate with the given spread (its interval is not used by the functions that take it here)."""
    return stats.Estimate(mean, mean - 1, mean + 1, n, sd, NAN, level, 3)


# --------------------------------------------------------------------------- seed_interval

def test_seed_interval_matches_scipys_t_interval_and_t_test():
    values = [0.4, 1.9, -0.7, 1.2, 0.3]
    e = stats.seed_interval(values, level=0.9)
    lo, hi = sps.t.interval(0.9, len(values) - 1, loc=np.mean(values), scale=sps.sem(values))
    assert (e.lo, e.hi) == (pytest.approx(lo, rel=1e-12), pytest.approx(hi, rel=1e-12))
    assert e.p == pytest.approx(sps.ttest_1samp(values, 0).pvalue, rel=1e-12)
    assert e.sd == pytest.approx(np.std(values, ddof=1)) and e.n == 5 and e.level == 0.9


def test_the_defaults_are_the_plans_95_percent_and_three_seeds():
    two, three = stats.seed_interval([1.0, 2.0]), stats.seed_interval([1.0, 2.0, 4.0])
    assert not two.has_interval and three.has_interval and three.level == 0.95
    lo, _ = sps.t.interval(0.95, 2, loc=7 / 3, scale=sps.sem([1.0, 2.0, 4.0]))
    assert three.lo == pytest.approx(lo, rel=1e-12)


def test_an_estimate_is_a_value_that_cannot_be_changed_in_place():
    """Parts of several claims may share an estimate: a change is a new Estimate (dataclasses.replace, clip)."""
    import dataclasses
    e = stats.seed_interval([1.0, 2.0, 4.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.mean = 0.0


def test_a_constant_effect_has_a_zero_width_interval_and_a_p_value_by_definition():
    """sd = 0: the t statistic is mean/0. A non-zero mean is then as significant as can be (p = 0);
    a zero mean (0/0) is no evidence of a difference at all (p = 1), never p = 0."""
    zero, two = stats.seed_interval([0.0, 0.0, 0.0]), stats.seed_interval([2.0, 2.0, 2.0])
    assert zero.p == 1.0 and (zero.lo, zero.hi) == (0.0, 0.0)
    assert two.p == 0.0 and (two.lo, two.hi) == (2.0, 2.0)
    assert stats.decide(zero.p, NAN, zero.mean, +1) == "inconclusive"


def test_non_finite_values_are_dropped_and_min_n_counts_the_rest():
    e = stats.seed_interval([1.0, NAN, 2.0, float("inf"), 3.0])
    assert e.n == 3 and e.mean == 2.0 and e.has_interval
    assert stats.seed_interval([1.0, 2.0], min_n=2).has_interval            # two seeds when allowed
    assert not stats.seed_interval([1.0, 2.0, 4.0], min_n=4).has_interval   # three below min_n 4
    one = stats.seed_interval([1.0], min_n=1)                               # no sd from one value
    assert not one.has_interval and math.isnan(one.p) and one.seeds_text == "one seed"


def test_estimate_text_clip_and_signed():
    e = stats.seed_interval([-1.0, 0.5, 2.0])
    half = sps.t.ppf(0.975, 2) * 1.5 / math.sqrt(3)                # sd of (-1, 0.5, 2) is 1.5
    assert e.text(2) == f"+0.50 [−{half - 0.5:.2f}, +{0.5 + half:.2f}] (3 seeds)"
    assert e.text(1, " pt").startswith("+0.5 pt [")
    clipped = e.clip(0, 2)
    assert (clipped.lo, clipped.hi) == (0, 2) and clipped.mean == e.mean
    assert math.isnan(stats.seed_interval([1.0]).clip(0, 2).lo)            # no interval: nothing to cut
    assert stats.signed(-0.304) == "−0.30" and stats.signed(1.5, 1) == "+1.5"
    assert stats.seed_interval([]).seeds_text == "no seeds"


# --------------------------------------------------------------------------- correlations

def test_fisher_interval_is_the_t_interval_of_the_mean_z_shown_on_the_r_scale():
    rs = [0.2, 0.7, 0.45, 0.1]
    z = np.arctanh(rs)
    lo, hi = sps.t.interval(0.95, 3, loc=z.mean(), scale=sps.sem(z))
    e = stats.fisher_interval(rs)
    assert e.mean == pytest.approx(math.tanh(z.mean())) and e.lo == pytest.approx(math.tanh(lo))
    assert e.hi == pytest.approx(math.tanh(hi)) and e.p == pytest.approx(sps.ttest_1samp(z, 0).pvalue)
    for rs in ([1.0, 0.9, 0.95], [-1.0, -0.9, -0.95]):      # |r| = 1 is clipped, not an infinite z
        assert stats.fisher_interval(rs).has_interval and math.isfinite(stats.fisher_interval(rs).p)
    mixed = [-0.6, 0.1, -0.3, -0.75]
    z = np.arctanh(mixed)
    lo, hi = sps.t.interval(0.95, 3, loc=z.mean(), scale=sps.sem(z))
    e = stats.fisher_interval(mixed)
    assert (e.mean, e.lo, e.hi) == (pytest.approx(math.tanh(z.mean())), pytest.approx(math.tanh(lo)),
                                    pytest.approx(math.tanh(hi)))
    assert math.isnan(stats.fisher_interval([0.3]).lo)


def test_spearman_is_scipys_with_ties():
    x, y = [1, 2, 2, 3, 5, 4, 4], [3, 1, 2, 2, 6, 5, 9]
    assert stats.spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic, rel=1e-12)
    assert stats.spearman([1, 2, 3], [1, 3, 2]) == pytest.approx(0.5)            # three points suffice
    assert math.isnan(stats.spearman([1, 2], [2, 1]))                           # two do not


@pytest.mark.parametrize("df", [1, 2, 3, 4, 9, 29])
def test_the_distribution_functions_are_scipy_stats_to_the_last_bit(df):
    """stats calls scipy.special (a third of scipy.stats' import time); scipy.stats.t and chi2 call the same."""
    for q in (0.025, 0.05, 0.5, 0.95, 0.975, 0.99):
        assert stats.t_quantile(q, df) == float(sps.t.ppf(q, df))
        assert stats.chi2_quantile(q, df) == float(sps.chi2.ppf(q, df))
    for x in (-7.5, -2.1, -0.3, 0.0, 0.4, 1.96, 12.0):
        assert stats.t_cdf(x, df) == float(sps.t.cdf(x, df))
        assert stats.t_cdf(-x, df) == float(sps.t.sf(x, df))


def test_average_ranks_are_scipys_rankdata_with_ties():
    rng = np.random.default_rng(3)
    for x in ([3, 1, 2], [1, 2, 2, 3, 5, 4, 4], [7, 7, 7], rng.integers(0, 5, 40), rng.normal(size=25)):
        assert stats.average_ranks(x).tolist() == sps.rankdata(x).tolist()


def test_a_nan_on_either_side_gives_nan_as_scipys_spearmanr():
    x, y = [1.0, 2.0, float("nan"), 4.0, 3.0], [2.0, 1.0, 4.0, 3.0, 5.0]
    assert math.isnan(sps.spearmanr(x, y).statistic)
    assert math.isnan(stats.spearman(x, y)) and math.isnan(stats.spearman(y, x))


@pytest.mark.parametrize("x, y", [([1, 2, 3, 4], [5, 5, 5, 5]), ([5, 5, 5, 5], [1, 2, 3, 4])])
def test_a_constant_side_gives_nan_quietly(x, y):
    """A constant side has no ranks to correlate: NaN, without numpy's 0/0 warning in a book page."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(stats.spearman(x, y))
        assert math.isnan(stats.partial_spearman(x, y, [1, 3, 2, 4]))


def _residual_correlation(x, y, z) -> float:
    """The partial rank correlation by its definition: the correlation of the ranks of x and y after a
    least-squares fit (with intercept) of each on the ranks of z."""
    rx, ry, rz = (sps.rankdata(v) for v in (x, y, z))
    design = np.column_stack([np.ones_like(rz), rz])
    res = [r - design @ np.linalg.lstsq(design, r, rcond=None)[0] for r in (rx, ry)]
    return float(np.corrcoef(*res)[0, 1])


def test_partial_spearman_is_the_correlation_of_rank_residuals():
    rng = np.random.default_rng(4)
    z = rng.normal(size=40)
    x = z + rng.normal(0, 0.8, 40)                 # strongly tied to z
    y = 0.4 * z - 0.6 * x + rng.normal(0, 1.0, 40)  # weakly tied to z, negatively to x
    expected = _residual_correlation(x, y, z)
    assert stats.spearman(x, z) > 0.6 and abs(stats.spearman(y, z)) > 0.05     # both factors of the formula matter
    assert stats.partial_spearman(x, y, z) == pytest.approx(expected, rel=1e-10)
    assert stats.partial_spearman(y, x, z) == pytest.approx(expected, rel=1e-10)   # symmetric in x, y


def test_partial_spearman_is_nan_when_z_explains_a_side_entirely():
    z = np.arange(6.0)                     # six ranks: numpy's r_xz is exactly 1 (some n leave 1 − 1e-16)
    assert math.isnan(stats.partial_spearman(z ** 2, np.sin(z), z))    # rank(x) = rank(z): 1 − r_xz² = 0
    assert math.isnan(stats.partial_spearman(np.sin(z), -z, z))        # rank(y) reversed rank(z)


def _frames():
    import pandas as pd
    rng = np.random.default_rng(3)
    x = pd.DataFrame({"a": rng.normal(size=12), "b": rng.integers(0, 4, 12).astype(float),   # b: ties
                      "c": np.arange(12.0)})
    y = pd.DataFrame({"u": rng.normal(size=12), "v": x.a + rng.normal(0, 0.5, 12)})
    return x, y


def test_spearman_matrix_is_scipys_rho_per_pair():
    x, y = _frames()                     # 3 × 2: a transposed matrix would not even have the shape
    want = np.array([[sps.spearmanr(x[a], y[b]).statistic for b in y] for a in x])
    assert stats.spearman_matrix(x, y) == pytest.approx(want, rel=1e-12)
    x.loc[[0, 5], "a"] = np.nan           # a missing value: each pair on its complete rows
    y.loc[7, "u"] = np.nan
    ok = x.a.notna() & y.u.notna()
    got = stats.spearman_matrix(x, y)
    assert got[0, 0] == pytest.approx(sps.spearmanr(x.a[ok], y.u[ok]).statistic, rel=1e-12)
    assert got[1, 1] == pytest.approx(sps.spearmanr(x.b, y.v).statistic, rel=1e-12)
    two = stats.spearman_matrix(x.head(2), y.head(2))             # two rows: no correlation
    assert two.shape == (3, 2) and np.isnan(two).all()


def test_spearman_matrix_of_a_constant_column_is_nan_quietly():
    x, y = _frames()
    x["b"] = 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = stats.spearman_matrix(x, y)
    assert np.isnan(got[1]).all() and np.isfinite(got[[0, 2]]).all()


def _bootstrap_by_hand(values, stat, n, seed, level):
    """The percentile bootstrap written out: n resamples of the units with replacement from numpy's
    default_rng(seed), the (1 − level)/2 and (1 + level)/2 quantiles of the statistic."""
    rng = np.random.default_rng(seed)
    draws = [stat(values[rng.integers(0, len(values), len(values))]) for _ in range(n)]
    return tuple(np.nanpercentile(draws, [50 * (1 - level), 50 * (1 + level)]))


def test_bootstrap_ci_is_the_percentile_bootstrap():
    v = np.random.default_rng(2).normal(size=25)
    lo, hi = stats.bootstrap_ci(v)
    assert (lo, hi) == pytest.approx(_bootstrap_by_hand(v, np.mean, 2000, 0, 0.95), rel=1e-12)
    ref = sps.bootstrap((v,), np.mean, n_resamples=20000, method="percentile", random_state=1).confidence_interval
    assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=0.05 * (ref.high - ref.low))   # scipy's, up to resampling
    assert stats.bootstrap_ci(v, np.median, n=300, seed=4, level=0.8) == \
        pytest.approx(_bootstrap_by_hand(v, np.median, 300, 4, 0.8), rel=1e-12)


def test_bootstrap_ci_needs_ten_units():
    assert all(map(math.isnan, stats.bootstrap_ci(np.arange(9.0))))
    assert all(map(math.isfinite, stats.bootstrap_ci(np.arange(10.0))))


def test_correlation_is_scipys_r_with_the_bootstrap_over_points():
    x, y = _frames()
    out = stats.correlation(x.a, y.v, n_boot=400, seed=1)
    assert out["r"] == pytest.approx(sps.spearmanr(x.a, y.v).statistic, rel=1e-12) and out["n"] == 12

    def rho(idx):
        return sps.spearmanr(x.a.to_numpy()[idx], y.v.to_numpy()[idx]).statistic
    want = _bootstrap_by_hand(np.arange(12), rho, 400, 1, 0.95)
    assert (out["lo"], out["hi"]) == pytest.approx(want, rel=1e-9)
    pearson = stats.correlation(x.a, y.v, method="pearson", n_boot=0)
    assert pearson["r"] == pytest.approx(sps.pearsonr(x.a, y.v).statistic, rel=1e-12)
    assert math.isnan(pearson["lo"]) and math.isnan(pearson["hi"])
    three = stats.correlation([1, 2, 4], [3, 1, 2], method="pearson", n_boot=0)["r"]     # three points suffice
    assert three == pytest.approx(sps.pearsonr([1, 2, 4], [3, 1, 2]).statistic, rel=1e-12)
    assert math.isnan(stats.correlation([1, 2], [2, 1], method="pearson", n_boot=0)["r"])
    with warnings.catch_warnings():      # a constant side: NaN, without numpy's 0/0 warning
        warnings.simplefilter("error")
        assert math.isnan(stats.correlation([1, 2, 3], [4, 4, 4], method="pearson", n_boot=0)["r"])
        assert math.isnan(stats.correlation([4, 4, 4], [1, 2, 3], method="pearson", n_boot=0)["r"])


# --------------------------------------------------------------------------- equivalence, outcome

def test_tost_is_scipys_two_one_sided_tests_whichever_side_is_nearer():
    values = [-1.3, -0.4, -0.9, -1.1]                   # mean −0.925: nearer −1.5 than +1.5
    e = stats.seed_interval(values)
    lower = sps.ttest_1samp(values, -1.5, alternative="greater").pvalue
    upper = sps.ttest_1samp(values, 1.5, alternative="less").pvalue
    assert lower > upper and stats.tost_p(e, 1.5) == pytest.approx(lower, rel=1e-10)
    two = stats.seed_interval([0.2, 0.5], min_n=2)                       # two seeds, when the plan allows it
    lower = sps.ttest_1samp([0.2, 0.5], -1.0, alternative="greater").pvalue
    upper = sps.ttest_1samp([0.2, 0.5], 1.0, alternative="less").pvalue
    assert stats.tost_p(two, 1.0) == pytest.approx(max(lower, upper), rel=1e-10)


def test_tost_of_a_constant_effect_is_decided_by_the_margin():
    inside, outside = stats.seed_interval([-0.5] * 3), stats.seed_interval([0.6] * 3)
    assert stats.tost_p(inside, 1.0) == 0.0 and stats.tost_p(outside, 0.5) == 1.0
    assert stats.tost_p(stats.seed_interval([0.5] * 3), 0.5) == 1.0              # on the margin: not inside
    assert math.isnan(stats.tost_p(inside, -1.0))


def test_decide_reads_alpha_strictly_and_a_zero_mean_is_never_a_direction():
    assert stats.decide(0.049, NAN, 0.3, +1) == "supported"
    assert stats.decide(0.05, NAN, 0.3, +1) == "inconclusive"                      # p < α, not ≤
    assert stats.decide(0.049, 0.05, 0.3, +1) == "supported"
    assert stats.decide(0.001, NAN, 0.0, +1) == "inconclusive"
    assert stats.decide(0.2, 0.01, -0.1, -1, alpha=0.01) == "inconclusive"       # α is the one given
    assert stats.decide(0.2, 0.009, -0.1, -1, alpha=0.01) == "equivalent"
    assert stats.decide(0.01, 0.01, -0.1, 0) == "different" + stats.WITHIN
    with pytest.raises(ValueError, match="direction 2"):
        stats.decide(0.01, NAN, 1.0, 2)


def test_combination_edges():
    assert stats.combine([]) == "inconclusive"
    assert stats.combine(["supported" + stats.WITHIN, "equivalent"]) == "equivalent"
    assert stats.combine(["supported", "supported" + stats.WITHIN]) == "inconclusive"
    assert stats.combine(["inconclusive", "contradicted"]) == "contradicted"
    assert stats.as_claimed("different" + stats.WITHIN, 0) == "supported"
    assert stats.as_claimed("inconclusive", 0) == "inconclusive" and stats.as_claimed("different", -1) == "different"
    assert stats.overall({}) == "not computed" and stats.overall({"a": "equivalent"}) == "equivalent"


# --------------------------------------------------------------------------- noise floor, multiplicity

def test_the_lower_bound_is_the_chi_square_quantile_of_the_sd():
    """σ_lo = s·√(df/q) with P(χ²_df ≤ q) = bound: read back through the chi-square cdf."""
    lo = stats.lower_bound(2.0, 6, 0.95)
    assert sps.chi2.cdf(6 * 2.0 ** 2 / lo ** 2, 6) == pytest.approx(0.95)
    assert lo < 2.0 and stats.lower_bound(2.0, 6, 0.5) > lo
    assert math.isnan(stats.lower_bound(2.0, 0)) and math.isnan(stats.lower_bound(NAN, 4))


def test_pooled_sd_leaves_out_non_finite_values_and_single_members():
    # groups a: (1, 3) -> ss 2; b: (5, nan, 9) -> ss 8; c: (7) alone -> nothing; df 1 + 1
    sd, df = stats.pooled_sd([1, 3, 5, NAN, 9, 7], ["a", "a", "b", "b", "b", "c"])
    assert (sd, df) == (pytest.approx(math.sqrt(10 / 2)), 2)
    assert stats.noise_floor([1, 3, 5], bound=None) == pytest.approx(math.sqrt(2) * 2.0)


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running max 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])                   # capped at 1
    adj = stats.holm([NAN, 0.01])
    assert math.isnan(adj[0]) and adj[1] == pytest.approx(0.01)                  # NaN does not count
    assert stats.holm([0.02, 0.02]) == pytest.approx([0.04, 0.04])                # ties


# --------------------------------------------------------------------------- seeds needed

def _half_width(sd: float, n: int, level: float = 0.95) -> float:
    lo, hi = sps.t.interval(level, n - 1, loc=0.0, scale=sd / math.sqrt(n))
    return (hi - lo) / 2


@pytest.mark.parametrize("sd, target, level, expected", [
    (1.0, 1.0, 0.95, 7),    # t(0.975, 5) = 2.571: 2.571/√6 = 1.050 > 1; t(0.975, 6) = 2.447: 2.447/√7 = 0.925 ≤ 1
    (0.5, 2.0, 0.90, 3),    # t(0.95, 1) = 6.314: 6.314·0.5/√2 = 2.23 > 2; t(0.95, 2) = 2.920: 2.920·0.5/√3 = 0.84
    (3.0, 1.0, 0.95, 38),   # about (1.96·3)² = 35, a little more for t's heavier tails
    (0.1, 1.0, 0.95, 2),    # t(0.975, 1) = 12.706: 12.706·0.1/√2 = 0.90 ≤ 1 at the first n
])
def test_seeds_needed_is_the_first_n_whose_t_half_width_fits(sd, target, level, expected):
    n = stats.seeds_needed(estimate(sd, level=level), target)
    assert n == expected
    assert _half_width(sd, n, level) <= target                                      # scipy's t-interval
    assert n == 2 or target < _half_width(sd, n - 1, level)


def test_seeds_needed_without_a_spread_or_a_width_is_none():
    assert stats.seeds_needed(estimate(0.0), 1.0) is None          # no spread: nothing to estimate from
    assert stats.seeds_needed(estimate(NAN), 1.0) is None
    assert stats.seeds_needed(estimate(1.0), 0.0) is None
    assert stats.seeds_needed(estimate(1.0), 0.001) is None        # beyond 1000 seeds


def test_signed_never_prints_a_negative_zero():
    from fairgap_utils.book.stats import signed
    assert signed(-0.001, 1) == "+0.0" and signed(-0.06, 1) == "−0.1" and signed(0.049, 1) == "+0.0"


@pytest.mark.parametrize("n", [5, 6, 10])
def test_partial_spearman_is_nan_when_z_determines_x(n):
    """1 − r_xz² left at rounding level (about 4e-16 for some n) is no information, not a correlation of 1e-9."""
    from fairgap_utils.book.stats import partial_spearman
    x = np.arange(n, dtype=float)
    y = np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0, 5.5, 3.5])[:n]
    assert math.isnan(partial_spearman(x, y, x * 2 + 1))
