"""How large a difference must be to mean something: seed-to-seed spread and intervals.

A short training is chaotic: the same config on two CPUs of one class moved a cell of the demo
by up to 28 points of top-1, while a rerun on one machine reproduces it to the last digit. So a
figure from one run is one draw from a distribution, and the report gives its spread wherever
the sweep lets it:

* **several seeds per cell**: mean ± sample standard deviation per cell, and for the Spearman
  correlation and the slope a bootstrap 95% interval: each replicate draws one finished seed per
  cell, so the interval is the range a sweep of one seed per cell would land in;
* **one seed per cell**: the residual spread around the log-linear fit of top-1 on mult-adds,
  which bounds the noise from above (it also holds whatever the fit misses);
* **two variants**: the difference of their means with a Welch t interval, or, where a side has
  a single run, a t interval from the sweep's pooled seed-to-seed spread.

numpy only; the bootstrap draws from a fixed seed, so a report is reproducible.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_REPLICATES = 2000
BOOTSTRAP_SEED = 1704_04861  # the paper's arXiv number: any fixed value makes reports repeatable
CONFIDENCE = 0.95

# Two-sided 97.5% quantiles of Student's t for 1-30 degrees of freedom (standard tables). A
# fractional Welch df is rounded down and df above 30 uses df = 30: both only widen the interval.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: float) -> float:
    """The 97.5% quantile of Student's t at ``floor(df)`` degrees of freedom (df >= 1)."""
    if not df >= 1:
        raise ValueError(f"a t interval needs at least 1 degree of freedom, got df={df}")
    return _T975[min(int(df), len(_T975)) - 1]


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high

    def text(self, spec: str) -> str:
        return f"[{self.low:{spec}}, {self.high:{spec}}]"


def mean_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (None where there are too few values)."""
    if not values:
        return None, None
    mean = statistics.fmean(values)
    return mean, statistics.stdev(values) if len(values) >= 2 else None


def bootstrap_one_seed_per_cell(
    seeds: Sequence[Sequence[float]],
    statistic: Callable[[list[float]], float | None],
    replicates: int = BOOTSTRAP_REPLICATES,
    rng_seed: int = BOOTSTRAP_SEED,
) -> Interval | None:
    """95% percentile interval of ``statistic`` over replicates that draw one value per cell.

    ``seeds[i]`` holds cell i's finished seeds (each non-empty). Returns None when no cell has a
    second seed (nothing to resample) or when the statistic is undefined in most replicates.
    """
    if not seeds or any(len(s) == 0 for s in seeds):
        raise ValueError("every cell needs at least one finished seed to resample")
    if all(len(s) < 2 for s in seeds):
        return None
    rng = np.random.default_rng(rng_seed)
    picks = [rng.integers(0, len(s), size=replicates) for s in seeds]
    values = []
    for b in range(replicates):
        found = statistic([float(s[int(p[b])]) for s, p in zip(seeds, picks, strict=True)])
        if found is not None and math.isfinite(found):
            values.append(found)
    if len(values) < replicates / 2:
        return None
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return Interval(float(low), float(high))


def residual_sd(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Standard deviation of the residuals of the least-squares fit of y on log10(x), with
    n - 2 degrees of freedom; None for fewer than 3 points or fewer than 2 distinct x."""
    if len(xs) != len(ys):
        raise ValueError(f"residuals need pairs, got {len(xs)} x and {len(ys)} y values")
    if len(xs) < 3 or len(set(xs)) < 2:
        return None
    slope, intercept = np.polyfit(np.log10(np.asarray(xs, dtype=float)), ys, 1)
    residuals = np.asarray(ys, dtype=float) - (intercept + slope * np.log10(xs))
    return float(math.sqrt(float(np.sum(residuals**2)) / (len(xs) - 2)))


def pooled_sd(groups: Sequence[Sequence[float]]) -> tuple[float, int] | None:
    """The pooled within-group standard deviation and its degrees of freedom, over the groups
    with at least two values; None when there is none."""
    usable = [g for g in groups if len(g) >= 2]
    if not usable:
        return None
    df = sum(len(g) - 1 for g in usable)
    ss = sum(sum((v - statistics.fmean(g)) ** 2 for v in g) for g in usable)
    return math.sqrt(ss / df), df


@dataclass(frozen=True)
class Difference:
    """``mean(a) - mean(b)`` with its 95% interval (None when no noise estimate exists)."""

    a_mean: float
    b_mean: float
    interval: Interval | None
    method: str
    """How the interval was built, in words (printed beside it)."""

    @property
    def value(self) -> float:
        return self.a_mean - self.b_mean

    @property
    def distinguishable(self) -> bool | None:
        """False when the interval covers zero, None without an interval."""
        return None if self.interval is None else not self.interval.covers(0.0)


def difference(
    a: Sequence[float],
    b: Sequence[float],
    pooled: tuple[float, int] | None = None,
    pooled_source: str = "the sweep's pooled seed-to-seed spread",
) -> Difference:
    """The difference of two sets of runs' top-1, with a t interval.

    Both sides with two values or more: Welch's interval (unequal variances, Welch-Satterthwaite
    df). Otherwise the ``pooled`` (sd, df) noise estimate, if given, stands in for the unknown
    spread of both sides: ``sd * sqrt(1/n_a + 1/n_b)`` at its df.
    """
    if not a or not b:
        raise ValueError(f"a difference needs values on both sides, got {len(a)} and {len(b)}")
    ma, mb = statistics.fmean(a), statistics.fmean(b)
    if len(a) >= 2 and len(b) >= 2:
        va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
        se = math.sqrt(va + vb)
        if se == 0:
            return Difference(ma, mb, Interval(ma - mb, ma - mb), "Welch t (no spread at all)")
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
        half = t975(df) * se
        return Difference(ma, mb, Interval(ma - mb - half, ma - mb + half), f"Welch t, df {df:.2f}")
    if pooled is None:
        return Difference(ma, mb, None, "no noise estimate: run several seeds (train.seed)")
    sd, df = pooled
    half = t975(df) * sd * math.sqrt(1 / len(a) + 1 / len(b))
    return Difference(
        ma,
        mb,
        Interval(ma - mb - half, ma - mb + half),
        f"t interval from {pooled_source} ({sd:.2f} pp, df {df})",
    )
