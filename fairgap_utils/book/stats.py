"""The statistics behind the verdicts: the seed is the unit, Retrains give the noise floor.

Models of one (architecture, seed) share an original and a Retrain, so they are not
independent: every effect is computed within a seed first and only then summarized over
seeds. The rules (book/analysis_plan.md declares them), each a function below:

- **Interval** (`seed_interval`): the mean over seeds with a Student-t interval,
  mean ± t(level, n−1) · sd / √n, and the two-sided one-sample t-test against 0. With fewer
  than `min_n` seeds no interval is drawn.
- **Correlations** (`fisher_interval`): one correlation per seed, Fisher z = atanh(r),
  the t-interval of the mean z over seeds, shown back on the r scale (tanh).
- **Noise floor** (`pooled_sd`, `noise_floor`): δ_Q = √2 · σ_R, σ_R the standard deviation
  of Q over Retrains that differ only in their training seed, pooled within groups of
  Retrains that share a split, and taken at its one-sided lower confidence bound
  σ_R · √(df / χ²_bound(df)) so that an estimate that happens to be large cannot buy
  *equivalent*.
- **Equivalence** (`tost_p`): the two one-sided t-tests against ±δ; their larger p-value.
- **Outcome** (`decide`): from the direction test and the equivalence test, both at α after
  adjustment: *supported* / *contradicted* (significant, not equivalent), *equivalent* (not
  significant, equivalent), "supported/contradicted, within the noise floor" (both
  significant) and *inconclusive* (neither). Direction is read first: an interval that
  excludes 0 is never plain *equivalent*.
- **Multiplicity** (`holm`): Holm's step-down adjustment of a family of p-values.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np


def _special():
    # scipy.special, not scipy.stats: the same functions (scipy.stats' t and chi2 call these) at a third of the
    # import time, which every page that draws an interval pays
    import scipy.special  # lazy: most pages draw no interval
    return scipy.special


def t_quantile(q: float, df: int) -> float:
    """The q-quantile of Student's t with `df` degrees of freedom (scipy.stats.t.ppf)."""
    return float(_special().stdtrit(df, q))


def t_cdf(x: float, df: int) -> float:
    """P(T ≤ x), T Student's t with `df` degrees of freedom (scipy.stats.t.cdf); P(T > x) is t_cdf(−x, df)."""
    return float(_special().stdtr(df, x))


def chi2_quantile(q: float, df: int) -> float:
    """The q-quantile of χ² with `df` degrees of freedom (scipy.stats.chi2.ppf)."""
    return float(2 * _special().gammaincinv(df / 2, q))


def average_ranks(x) -> np.ndarray:
    """Ranks 1..n, ties given the mean of their ranks (scipy.stats.rankdata's 'average', as spearmanr)."""
    x = np.asarray(x, float)
    ranks = np.empty(len(x))
    ranks[np.argsort(x, kind="stable")] = np.arange(1, len(x) + 1)
    _, tie, count = np.unique(x, return_inverse=True, return_counts=True)
    return np.bincount(tie, weights=ranks)[tie] / count[tie]


VERDICTS = ("supported", "contradicted", "equivalent", "inconclusive")   # the four outcomes (plus "..., within
# the noise floor" for a significant effect smaller than the floor; "different" for a claim of no difference)


@dataclass(frozen=True)
class Estimate:
    """A mean over seeds with its t-interval (lo, hi are NaN when there is no interval)."""
    mean: float
    lo: float
    hi: float
    n: int           # seeds behind it
    sd: float        # over seeds, on the scale the interval was computed on
    p: float         # two-sided one-sample t-test against 0 (NaN without an interval)
    level: float
    min_n: int

    @property
    def has_interval(self) -> bool:
        return self.n >= self.min_n and math.isfinite(self.lo) and math.isfinite(self.hi)

    @property
    def seeds_text(self) -> str:
        if self.n == 0:
            return "no seeds"
        if self.n == 1:
            return "one seed"
        return f"{self.n} seeds" + ("" if self.has_interval else ": too few for an interval")

    def clip(self, low: float, high: float) -> "Estimate":
        """The interval cut to the range the quantity can take (a share: 0 to 100)."""
        return dataclasses.replace(self, lo=max(self.lo, low) if math.isfinite(self.lo) else self.lo,
                                   hi=min(self.hi, high) if math.isfinite(self.hi) else self.hi)

    def text(self, digits: int = 2, unit: str = "") -> str:
        """'+1.20 [−0.30, +2.70] (3 seeds)', '+1.20 (one seed)' or 'n/a (no seeds)'."""
        if not math.isfinite(self.mean):
            return f"n/a ({self.seeds_text})"
        interval = f" [{signed(self.lo, digits)}, {signed(self.hi, digits)}]" if self.has_interval else ""
        return f"{signed(self.mean, digits)}{unit}{interval} ({self.seeds_text})"


def signed(x: float, digits: int = 2) -> str:
    """A number with its sign and a true minus: '+1.20', '−0.30'; a value that rounds to zero is '+0.00'."""
    return f"{round(x, digits) + 0.0:+.{digits}f}".replace("-", "−")


def _clean(values) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    return v[np.isfinite(v)]


def seed_interval(values, level: float = 0.95, min_n: int = 3) -> Estimate:
    """Mean of one value per seed with a t-interval; no interval below `min_n` seeds."""
    v = _clean(values)
    n = len(v)
    mean = float(v.mean()) if n else float("nan")
    sd = float(v.std(ddof=1)) if n > 1 else float("nan")
    lo = hi = p = float("nan")
    if n >= max(min_n, 2):
        half = t_quantile((1 + level) / 2, n - 1) * sd / math.sqrt(n)
        lo, hi = mean - half, mean + half
        se = sd / math.sqrt(n)
        p = (1.0 if mean == 0 else 0.0) if sd == 0 else 2 * t_cdf(-abs(mean) / se, n - 1)
    return Estimate(mean, lo, hi, n, sd, p, level, min_n)


def fisher_interval(rs, level: float = 0.95, min_n: int = 3) -> Estimate:
    """Correlations, one per seed: t-interval of the mean Fisher z, back on the r scale."""
    r = np.clip(_clean(rs), -0.999999, 0.999999)
    z = seed_interval(np.arctanh(r), level, min_n)
    def back(x):
        return float(np.tanh(x)) if math.isfinite(x) else float("nan")
    return Estimate(back(z.mean), back(z.lo), back(z.hi), z.n, z.sd, z.p, level, min_n)


def pooled_sd(values, groups=None) -> tuple[float, int]:
    """(σ, degrees of freedom): the standard deviation pooled within groups (NaN, 0 without two
    values in one group). `groups`: which values share a split (default: all of them)."""
    v = np.asarray(values, dtype=float).ravel()
    g = np.zeros(len(v)) if groups is None else np.asarray(groups)
    ok = np.isfinite(v)
    ss, df = 0.0, 0
    for key in np.unique(g[ok]):
        x = v[ok & (g == key)]
        if len(x) > 1:
            ss += float(np.sum((x - x.mean()) ** 2))
            df += len(x) - 1
    return (math.sqrt(ss / df) if df else float("nan")), df


def lower_bound(sd: float, df: int, bound: float = 0.95) -> float:
    """The one-sided `bound` lower confidence bound of a standard deviation with `df` degrees of freedom."""
    if not (df > 0 and math.isfinite(sd)):
        return float("nan")
    return sd * math.sqrt(df / chi2_quantile(bound, df))


def noise_floor(values, groups=None, bound: float | None = 0.95) -> float:
    """δ = √2 · σ of a quantity over Retrains (pooled within `groups`), at σ's lower confidence
    bound `bound` (None: the point estimate); NaN without two Retrains in one group."""
    sd, df = pooled_sd(values, groups)
    return math.sqrt(2) * (sd if bound is None else lower_bound(sd, df, bound))


def tost_p(est: Estimate, margin: float) -> float:
    """The equivalence test of a seed interval against ±margin: the larger p-value of the one-sided
    t-tests of "mean ≤ −margin" and "mean ≥ +margin" (NaN without an interval or a margin)."""
    if not (est.has_interval and math.isfinite(margin) and margin > 0 and est.n > 1):
        return float("nan")
    se, df = est.sd / math.sqrt(est.n), est.n - 1
    if se == 0:
        return 0.0 if abs(est.mean) < margin else 1.0
    return max(t_cdf(-(est.mean + margin) / se, df), t_cdf((est.mean - margin) / se, df))


WITHIN = ", within the noise floor"


def decide(p_direction: float, p_equivalence: float, mean: float, direction: int, alpha: float = 0.05) -> str:
    """The outcome of one part from its (adjusted) p-values; `direction` +1 / −1: the claimed sign,
    0: a claim of no difference (then: equivalent, different, "different, within the noise floor")."""
    if direction not in (1, -1, 0):
        raise ValueError(f"direction {direction!r} must be +1, -1 or 0")
    significant = math.isfinite(p_direction) and p_direction < alpha and mean != 0
    equivalent = math.isfinite(p_equivalence) and p_equivalence < alpha
    if significant:
        label = "different" if direction == 0 else \
            "supported" if np.sign(mean) == direction else "contradicted"
        return label + WITHIN if equivalent else label
    return "equivalent" if equivalent else "inconclusive"


def as_claimed(outcome: str, direction: int) -> str:
    """A part's outcome read against its claim: for a claim of no difference (direction 0), equivalent
    (or a difference within the noise floor) supports it and a difference beyond it contradicts it."""
    if direction != 0:
        return outcome
    return {"equivalent": "supported", "different" + WITHIN: "supported", "different": "contradicted"}.get(
        outcome, outcome)


def combine(verdicts) -> str:
    """One verdict from several parts (read `as_claimed`): all supported -> supported, any contradicted
    (beyond the floor) -> contradicted, all equivalent or within the noise floor -> equivalent, else
    inconclusive. One part: its own outcome."""
    v = list(verdicts)
    if len(v) == 1:
        return v[0]
    if v and all(x == "supported" for x in v):
        return "supported"
    if any(x == "contradicted" for x in v):
        return "contradicted"
    if v and all(x == "equivalent" or x.endswith(WITHIN) for x in v):
        return "equivalent"
    return "inconclusive"


def overall(per_arch: dict[str, str]) -> str:
    """The common verdict of the architectures, or 'differs by architecture'."""
    values = set(per_arch.values())
    if not values:
        return "not computed"
    return values.pop() if len(values) == 1 else "differs by architecture"


def spearman(x, y) -> float:
    """Spearman's rank correlation (NaN when either side is constant or holds a NaN, or n < 3)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.isnan(x).any() or np.isnan(y).any() or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    rx, ry = average_ranks(x), average_ranks(y)
    return float(np.corrcoef(rx, ry)[0, 1])


def spearman_matrix(x, y) -> np.ndarray:
    """`spearman` of every column of `x` with every column of `y` (DataFrames; rows: the same models), in one
    matrix product of standardized average ranks; a pair with a missing value: `spearman` on its complete rows."""
    out = np.full((x.shape[1], y.shape[1]), np.nan)
    if len(x) < 3:
        return out
    if x.isna().any().any() or y.isna().any().any():
        xs, ys = x.to_numpy(float), y.to_numpy(float)
        for i in range(xs.shape[1]):
            for j in range(ys.shape[1]):
                ok = ~np.isnan(xs[:, i]) & ~np.isnan(ys[:, j])
                out[i, j] = spearman(xs[ok, i], ys[ok, j])
        return out

    def z(frame):
        r = frame.rank().to_numpy(float)
        sd = r.std(axis=0)
        return (r - r.mean(axis=0)) / np.where(sd > 0, sd, np.nan)
    return z(x).T @ z(y) / len(x)


BOOTSTRAP_MIN_UNITS = 10  # below this a percentile bootstrap under-covers badly (3 units: about 75%)


def bootstrap_ci(values, stat=np.mean, n: int = 2000, seed: int = 0, level: float = 0.95):
    """Percentile bootstrap interval of `stat` over the first axis of `values` (NaN below 10 units).

    For exploring one scatter only; the verdicts use seed-level t-intervals (`seed_interval`).
    """
    values = np.asarray(values)
    if len(values) < BOOTSTRAP_MIN_UNITS:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    draws = [stat(values[rng.integers(0, len(values), len(values))]) for _ in range(n)]
    lo, hi = np.nanpercentile(draws, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def correlation(x, y, method: str = "spearman", n_boot: int = 2000, seed: int = 0) -> dict:
    """Pearson or Spearman r (`spearman`) with a bootstrap 95% interval over the points (for one scatter;
    the points are models, not independent units: the verdicts use `fisher_interval`)."""
    x, y = np.asarray(x, float), np.asarray(y, float)

    def r(idx):
        a, b = x[idx], y[idx]
        if method == "spearman":
            return spearman(a, b)
        if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
            return float("nan")
        return float(np.corrcoef(a, b)[0, 1])
    idx = np.arange(len(x))
    lo, hi = bootstrap_ci(idx, stat=r, n=n_boot, seed=seed) if n_boot else (float("nan"), float("nan"))
    return {"r": r(idx), "lo": lo, "hi": hi, "n": len(x)}


def partial_spearman(x, y, z) -> float:
    """Rank partial correlation of x and y given z: (r_xy − r_xz r_yz) / sqrt((1 − r_xz²)(1 − r_yz²))."""
    rxy, rxz, ryz = spearman(x, y), spearman(x, z), spearman(y, z)
    denom = (1 - rxz ** 2) * (1 - ryz ** 2)
    if not all(map(math.isfinite, (rxy, rxz, ryz))) or denom <= 1e-12:  # 1 - r^2 at rounding level: z decides x or y
        return float("nan")
    return float((rxy - rxz * ryz) / math.sqrt(denom))


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries stay NaN and do not count)."""
    p = np.asarray(pvalues, float)
    out = np.full_like(p, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def seeds_needed(est: Estimate, half_width: float) -> int | None:
    """About how many seeds make the t-interval's half-width ≤ `half_width` at the observed sd."""
    if not (math.isfinite(est.sd) and est.sd > 0 and half_width > 0):
        return None
    for n in range(2, 1001):
        if t_quantile((1 + est.level) / 2, n - 1) * est.sd / math.sqrt(n) <= half_width:
            return n
    return None
