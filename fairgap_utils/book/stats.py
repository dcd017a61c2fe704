"""The statistics behind the verdicts: the seed is the unit, Retrains give the noise floor.

Models of one (architecture, seed) share an original and a Retrain, so they are not
independent: every effect is computed within a seed first and only then summarized over
seeds. The rules, each a function below:

- **Interval** (`seed_interval`): the mean over seeds with a Student-t interval,
  mean ± t(level, n−1) · sd / √n (sd with n−1 degrees of freedom). With fewer than
  `min_n` seeds no interval is drawn; the text says "one seed" or "n seeds: too few for
  an interval". No percentile bootstrap is used on so few units.
- **Correlations** (`fisher_interval`): one correlation per seed, Fisher z = atanh(r),
  the t-interval of the mean z over seeds, shown back on the r scale (tanh).
- **Noise floor** (`noise_floor`): for a per-model quantity Q, the root-mean-square
  difference of Q between two Retrains that differ only in their training seed,
  δ_Q = sqrt(mean over pairs i<j of (Q(R_i) − Q(R_j))²) = √2 · sd(Q over Retrains).
  It is the typical gap between two equally valid exact unlearnings.
- **Verdict** (`verdict`), four-way, checked in this order: *equivalent* when the
  interval lies inside ±δ (whatever effect there is, is smaller than the gap between two
  Retrains); *supported* when it excludes 0 in the claimed direction; *contradicted*
  when it excludes 0 in the opposite direction; *inconclusive* otherwise, and always
  when there is no interval. Without a noise floor "equivalent" is never returned.
- **Multiplicity** (`holm`): Holm's step-down adjustment of a family of p-values.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy import stats as sps

VERDICTS = ("supported", "contradicted", "equivalent", "inconclusive")


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
    """A number with its sign and a true minus: '+1.20', '−0.30'."""
    return f"{x:+.{digits}f}".replace("-", "−")


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
        half = float(sps.t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)
        lo, hi = mean - half, mean + half
        se = sd / math.sqrt(n)
        p = (1.0 if mean == 0 else 0.0) if sd == 0 else float(2 * sps.t.sf(abs(mean) / se, n - 1))
    return Estimate(mean, lo, hi, n, sd, p, level, min_n)


def fisher_interval(rs, level: float = 0.95, min_n: int = 3) -> Estimate:
    """Correlations, one per seed: t-interval of the mean Fisher z, back on the r scale."""
    r = np.clip(_clean(rs), -0.999999, 0.999999)
    z = seed_interval(np.arctanh(r), level, min_n)
    def back(x):
        return float(np.tanh(x)) if math.isfinite(x) else float("nan")
    return Estimate(back(z.mean), back(z.lo), back(z.hi), z.n, z.sd, z.p, level, min_n)


def noise_floor(values, groups=None) -> float:
    """RMS of the pairwise differences of a quantity between Retrains (NaN without a pair).

    With `groups` (e.g. the seed of each Retrain), only pairs within a group count: two
    Retrains compared must share their split.
    """
    v = np.asarray(values, dtype=float).ravel()
    g = np.zeros(len(v)) if groups is None else np.asarray(groups)
    diffs = [v[i] - v[j] for i, j in combinations(range(len(v)), 2)
             if g[i] == g[j] and np.isfinite(v[i]) and np.isfinite(v[j])]
    return float(np.sqrt(np.mean(np.square(diffs)))) if diffs else float("nan")


def verdict(est: Estimate, direction: int = 1, margin: float = float("nan"),
            without_margin: str = "; no noise floor, so no equivalence test") -> tuple[str, str]:
    """(verdict, reason) for a claimed direction (+1: effect > 0 claimed, −1: effect < 0);
    `without_margin` is appended to the reason of an inconclusive verdict that had no margin."""
    if direction not in (1, -1):
        raise ValueError(f"direction {direction!r} must be +1 or -1")
    if not est.has_interval:
        return "inconclusive", f"{est.seeds_text}: no interval, no verdict"
    floor = math.isfinite(margin) and margin > 0
    if floor and -margin < est.lo and est.hi < margin:
        also = " (it excludes 0, but by less than the floor)" if est.lo > 0 or est.hi < 0 else ""
        return "equivalent", f"the interval lies inside ±{margin:.3g}, the Retrain-vs-Retrain noise floor{also}"
    if (est.lo > 0) if direction > 0 else (est.hi < 0):
        return "supported", "the interval excludes 0 in the claimed direction"
    if (est.hi < 0) if direction > 0 else (est.lo > 0):
        return "contradicted", "the interval excludes 0 in the opposite direction"
    return "inconclusive", "the interval includes 0" + ("" if floor else without_margin)


def equivalence(est: Estimate, margin: float = float("nan")) -> tuple[str, str]:
    """For a claim of no difference: 'equivalent' (interval inside ±margin), 'different'
    (interval entirely beyond ±margin; beyond 0 when there is no floor) or 'inconclusive'."""
    if not est.has_interval:
        return "inconclusive", f"{est.seeds_text}: no interval"
    floor = math.isfinite(margin) and margin > 0
    if floor and -margin < est.lo and est.hi < margin:
        return "equivalent", f"the interval lies inside ±{margin:.3g}, the Retrain-vs-Retrain noise floor"
    edge = margin if floor else 0.0
    if est.lo > edge or est.hi < -edge:
        return "different", ("the interval lies beyond the noise floor ±" + f"{margin:.3g}" if floor
                             else "the interval excludes 0 (no noise floor)")
    return "inconclusive", "the interval reaches into and beyond the noise floor" if floor else \
        "the interval includes 0; no noise floor, so no equivalence test"


def combine(verdicts) -> str:
    """One verdict from several parts: all supported -> supported, any contradicted ->
    contradicted, all equivalent -> equivalent, else inconclusive."""
    v = list(verdicts)
    if v and all(x == "supported" for x in v):
        return "supported"
    if any(x == "contradicted" for x in v):
        return "contradicted"
    if v and all(x == "equivalent" for x in v):
        return "equivalent"
    return "inconclusive"


def overall(per_arch: dict[str, str]) -> str:
    """The common verdict of the architectures, or 'differs by architecture'."""
    values = set(per_arch.values())
    if not values:
        return "not computed"
    return values.pop() if len(values) == 1 else "differs by architecture"


def spearman(x, y) -> float:
    """Spearman's rank correlation (NaN when either side is constant or n < 3)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    rx, ry = sps.rankdata(x), sps.rankdata(y)   # average ranks for ties, as spearmanr
    return float(np.corrcoef(rx, ry)[0, 1])


def partial_spearman(x, y, z) -> float:
    """Rank partial correlation of x and y given z: (r_xy − r_xz r_yz) / sqrt((1 − r_xz²)(1 − r_yz²))."""
    rxy, rxz, ryz = spearman(x, y), spearman(x, z), spearman(y, z)
    denom = (1 - rxz ** 2) * (1 - ryz ** 2)
    if not all(map(math.isfinite, (rxy, rxz, ryz))) or denom <= 0:
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
        if sps.t.ppf((1 + est.level) / 2, n - 1) * est.sd / math.sqrt(n) <= half_width:
            return n
    return None
