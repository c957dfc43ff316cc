"""How faithfully a sweep reproduces the paper, in a few numbers.

* **Analytic checks**: each mult-adds, params or share value the paper prints against our exact
  count, rounded to the decimals the paper printed. Three outcomes: ``pass`` (ours reads the
  printed value); ``erratum`` (it does not, the printed value is a documented erratum in
  ``mnv1.paper.ERRATA`` whose correction is derived from the architecture or the counting
  convention, and ours reads the correction); ``FAIL`` (any other difference, unexplained, shown
  red in the HTML and never excused: an entry of ``mnv1.paper.UNEXPLAINED`` is only a note).
* **Rank agreement**: Spearman's ρ between our top-1 and the TF-slim table's over the grid cells
  both have. Training budgets differ by orders of magnitude, so the ranking (which model beats
  which) is what a short sweep can reproduce, not the accuracies themselves; and unless the sweep
  trained on ImageNet it is a *shape comparison* only (sign of the slope, rank order), which the
  summary says.
* **Noise**: with several seeds per cell, bootstrap 95% intervals of ρ and of our slope
  (``mnv1.report.noise``); with one seed, the residual spread around our log-linear fit.
* **Trade-off slope**: the least-squares slope of top-1 (percent) against log10(mult-adds), the
  paper's "log linear dependence" (Figure 4), for ours and for the reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from mnv1 import paper
from mnv1.fits import spearman
from mnv1.report import noise
from mnv1.report.context import SweepContext
from mnv1.report.records import CellRecord
from mnv1.report.tables import Column, Table

PASS = "pass"
FAIL = "FAIL"
ERRATUM = "erratum"

# TF-slim released two sets of float checkpoints whose accuracies differ (mnv1.paper, sources
# [S17] and [S18a]: research/slim/nets/mobilenet_v1.md of each release).
SLIM_RELEASES: dict[str, str] = {"2017": "2017_06_14", "2018": "2018_02_22"}


def check_release(release: str) -> str:
    if release not in SLIM_RELEASES:
        raise ValueError(
            f"slim_release={release!r} is not a TF-slim release; allowed: {sorted(SLIM_RELEASES)}"
        )
    return release


def slim_top1(row: paper.SlimRow, release: str) -> float:
    return row.top1_2017 if check_release(release) == "2017" else row.top1_2018


def slim_row_or_none(alpha: float, resolution: int) -> paper.SlimRow | None:
    try:
        return paper.slim_row(alpha, resolution)
    except ValueError:
        return None  # off the TF-slim 4 × 4 grid: no reference value


def _round(value: float, decimals: int) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def rounds_to(value: float, printed: float, decimals: int) -> bool:
    """Whether ``value`` printed with ``decimals`` decimals (half up) reads ``printed``."""
    return _round(value, decimals) == _round(printed, decimals)


@dataclass(frozen=True)
class AnalyticCheck:
    """One printed value against our exact count."""

    table: str
    item: str
    """``"<row label> <column>"``, the key of ``mnv1.paper.erratum_for``."""
    ours: float
    printed: float
    decimals: int
    verdict: str
    erratum: paper.Erratum | None = None
    known: paper.KnownDifference | None = None
    """A listed but underived difference (``mnv1.paper.UNEXPLAINED``): shown, never excusing."""

    @property
    def ours_rounded(self) -> str:
        return str(_round(self.ours, self.decimals))

    @property
    def outcome(self) -> str:
        """The verdict in words, as the checks table shows it."""
        if self.verdict == PASS:
            return "matches the printed value"
        if self.verdict == ERRATUM and self.erratum is not None:
            return f"documented erratum, derived from the {self.erratum.basis}"
        return "differs, unexplained"


def check_printed(table: str, item: str, ours: float, printed: float) -> AnalyticCheck:
    """One printed value against our count: pass, erratum (documented, derived) or FAIL."""
    decimals = paper.printed_decimals(printed)
    erratum = paper.erratum_for(table, item)
    if rounds_to(ours, printed, decimals):
        verdict = PASS
    elif erratum is not None and _matches_correction(ours, erratum.correct, decimals):
        verdict = ERRATUM
    else:
        verdict = FAIL
    known = paper.unexplained_for(table, item) if verdict == FAIL else None
    return AnalyticCheck(table, item, ours, printed, decimals, verdict, erratum, known)


def _matches_correction(ours: float, correct: str, decimals: int) -> bool:
    try:
        value = float(correct.strip().rstrip("%"))
    except ValueError:
        return False  # a correction in words cannot vouch for a number
    return rounds_to(ours, value, decimals)


def verdict_of(checks: Iterable[AnalyticCheck]) -> str:
    """One word for several checks: FAIL if any failed, else erratum if any was excepted."""
    verdicts = {c.verdict for c in checks}
    if FAIL in verdicts:
        return FAIL
    return ERRATUM if ERRATUM in verdicts else PASS


@dataclass(frozen=True)
class LogLinearFit:
    """``top1 = intercept + slope · log10(x)``: slope in percentage points per decade of x."""

    slope: float
    intercept: float
    n: int

    def __call__(self, x: float) -> float:
        return self.intercept + self.slope * math.log10(x)


def loglinear_fit(xs: Sequence[float], ys: Sequence[float]) -> LogLinearFit | None:
    """Least-squares fit of y on log10(x); None for fewer than 2 distinct x values."""
    if len(xs) != len(ys):
        raise ValueError(f"a fit needs pairs, got {len(xs)} x values and {len(ys)} y values")
    if any(x <= 0 for x in xs):
        raise ValueError(f"a log-linear fit needs positive x values, got {list(xs)}")
    if len(set(xs)) < 2:
        return None
    lx = [math.log10(x) for x in xs]
    n = len(lx)
    mx, my = sum(lx) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(lx, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in lx
    )
    return LogLinearFit(slope=slope, intercept=my - slope * mx, n=n)


@dataclass(frozen=True)
class RankPair:
    """One cell in both our grid and the TF-slim table."""

    name: str
    ours_top1: float
    slim_top1: float
    ours_mult_adds_m: float | None
    slim_macs_m: float
    ours_seeds: tuple[float, ...] = ()
    """Top-1 of each finished seed (``ours_top1`` is their mean)."""


def rank_pairs(records: Iterable[CellRecord], release: str) -> list[RankPair]:
    """Finished separable cells with a top-1 that the TF-slim table also lists."""
    pairs = []
    for r in records:
        slim = slim_row_or_none(r.alpha, r.resolution)
        if r.variant != "separable" or r.top1 is None or slim is None:
            continue
        ours_ma = None if r.mult_adds is None else r.mult_adds / 1e6
        pairs.append(
            RankPair(r.name, r.top1, slim_top1(slim, release), ours_ma, slim.macs_m, r.top1_values)
        )
    return pairs


@dataclass(frozen=True)
class Noise:
    """What the sweep says about its own noise (see ``mnv1.report.noise``)."""

    seeds: tuple[int, ...]
    """Finished seeds per cell, over the cells with a result (``(3,)``: three everywhere)."""
    spearman_interval: noise.Interval | None = None
    slope_interval: noise.Interval | None = None
    seed_sd: tuple[float, int] | None = None
    """Pooled seed-to-seed standard deviation of top-1 (pp) and its degrees of freedom."""
    residual_sd: float | None = None
    """Residual standard deviation around our log-linear fit (pp), with one seed per cell."""
    residual_n: int = 0

    @property
    def several_seeds(self) -> bool:
        return any(n >= 2 for n in self.seeds)


@dataclass(frozen=True)
class Fidelity:
    checks: tuple[AnalyticCheck, ...]
    release: str
    spearman: float | None
    spearman_n: int
    fit_ours: LogLinearFit | None
    """Our top-1 against our logged mult-adds, over every finished separable cell."""
    fit_reference_same: LogLinearFit | None
    """TF-slim top-1 against TF-slim MACs, over the cells we have."""
    fit_reference_all: LogLinearFit | None
    """TF-slim top-1 against TF-slim MACs, over its 16 models."""
    noise: Noise = field(default_factory=lambda: Noise(()))
    context: SweepContext = field(default_factory=lambda: SweepContext(None))

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for c in self.checks)

    @property
    def analytic_ok(self) -> bool:
        return self.count(FAIL) == 0

    def summary_table(self) -> Table:
        rel = SLIM_RELEASES[self.release]
        table = Table(
            key="fidelity",
            title="Fidelity summary",
            columns=(
                Column("Measure"),
                Column("Value"),
                Column("95% interval"),
                Column("n", "d"),
            ),
        )
        checked = len(self.checks)
        counts = (
            f"{self.count(PASS)} match, {self.count(ERRATUM)} documented errata (derived), "
            f"{self.count(FAIL)} unexplained"
        )
        # A failed check leads the value, so it reads (and the HTML shows it red) as a fail.
        table.add(
            "Analytic columns (printed mult-adds, params, shares)",
            f"{FAIL}: {counts}" if self.count(FAIL) else counts,
            None,
            checked,
        )
        kind = "accuracy" if self.context.imagenet else "shape"
        table.add(
            f"Spearman ρ, our top-1 vs TF-slim {rel} top-1 ({kind} comparison)",
            _fmt(self.spearman, "+.3f"),
            _interval(self.noise.spearman_interval, "+.2f"),
            self.spearman_n,
        )
        for text, fit, interval in (
            (
                "Slope, ours (pp top-1 per decade of mult-adds)",
                self.fit_ours,
                self.noise.slope_interval,
            ),
            (f"Slope, TF-slim {rel}, same cells", self.fit_reference_same, None),
            (f"Slope, TF-slim {rel}, all 16 models", self.fit_reference_all, None),
        ):
            table.add(
                text,
                _fmt(None if fit is None else fit.slope, "+.2f"),
                _interval(interval, "+.1f"),
                _n(fit),
            )
        table.add("Noise", self.noise_text(), None, None)
        table.notes.append(
            "Spearman ρ and the slopes need at least 2 finished cells (slopes: 2 distinct "
            "mult-adds); — where there are fewer. The reference slopes use the TF-slim table's "
            "own MAC column. Our top-1 per cell is the mean over its finished seeds."
        )
        if not self.context.imagenet:
            table.notes.append(
                f"Trained on {self.context.dataset or 'an unknown dataset'}, not ImageNet: ρ and "
                "the slopes compare the shape of the trade-off (which model beats which, whether "
                "accuracy rises with mult-adds), not accuracies."
            )
        if self.noise.several_seeds:
            table.notes.append(
                "95% intervals: bootstrap over seeds, each of "
                f"{noise.BOOTSTRAP_REPLICATES} replicates drawing one finished seed per cell "
                "(fixed random seed): the range a sweep of one seed per cell lands in."
            )
        return table

    def noise_text(self) -> str:
        n = self.noise
        if not n.seeds:
            return "no finished cell"
        if n.several_seeds and n.seed_sd is not None:
            sd, df = n.seed_sd
            return (
                f"{self.context.seeds_text() or 'several seeds per cell'}: seed-to-seed sd of "
                f"top-1 {sd:.2f} pp (pooled over cells, df {df})"
            )
        residual = (
            f"residual sd around our log-linear fit {n.residual_sd:.2f} pp over {n.residual_n} "
            "cells (an upper bound: it also holds what the fit misses)"
            if n.residual_sd is not None
            else "too few cells for a residual spread"
        )
        return f"one seed per cell: no seed-to-seed spread measured; {residual}"

    def checks_table(self) -> Table:
        table = Table(
            key="analytic_checks",
            title="Analytic checks: every printed count against ours",
            columns=(
                Column("Table"),
                Column("Item"),
                Column("Printed"),
                Column("Ours (exact)", ".4f"),
                Column("Ours (as printed)"),
                Column("Verdict"),
                Column("Outcome"),
                Column("Correct value"),
                Column("Why"),
            ),
        )
        for c in self.checks:
            excused = c.verdict == ERRATUM and c.erratum is not None
            why = c.erratum.explanation if excused and c.erratum else None
            if c.verdict == FAIL and c.known is not None:
                why = f"Listed as unexplained, not an erratum: {c.known.note}"
            table.add(
                c.table,
                c.item,
                f"{c.printed:.{c.decimals}f}",
                c.ours,
                c.ours_rounded,
                c.verdict,
                c.outcome,
                c.erratum.correct if excused and c.erratum else None,
                why,
            )
        table.notes.append(
            "Three outcomes: pass, the count matches the printed value; erratum, it differs and "
            "the printed value is a documented erratum whose correction is derived from the "
            "architecture or the counting convention (Why); FAIL, it differs, unexplained."
        )
        return table

    def to_dict(self) -> dict[str, object]:
        def fit(f: LogLinearFit | None) -> dict[str, float] | None:
            return None if f is None else {"slope": f.slope, "intercept": f.intercept, "n": f.n}

        return {
            "analytic": {
                "pass": self.count(PASS),
                "erratum": self.count(ERRATUM),
                "fail": self.count(FAIL),
                "failed_items": [f"{c.table}: {c.item}" for c in self.checks if c.verdict == FAIL],
            },
            "slim_release": SLIM_RELEASES[self.release],
            "spearman": self.spearman,
            "spearman_n": self.spearman_n,
            "fit_ours": fit(self.fit_ours),
            "fit_reference_same_cells": fit(self.fit_reference_same),
            "fit_reference_all": fit(self.fit_reference_all),
            "comparison": "accuracy" if self.context.imagenet else "shape",
            "dataset": self.context.dataset,
            "seeds_per_cell": list(self.noise.seeds),
            "spearman_interval": _pair(self.noise.spearman_interval),
            "slope_ours_interval": _pair(self.noise.slope_interval),
            "seed_sd": None if self.noise.seed_sd is None else self.noise.seed_sd[0],
            "residual_sd": self.noise.residual_sd,
        }


def _fmt(value: float | None, spec: str) -> str | None:
    return None if value is None else format(value, spec)


def _n(fit: LogLinearFit | None) -> int | None:
    return None if fit is None else fit.n


def _interval(interval: noise.Interval | None, spec: str) -> str | None:
    return None if interval is None else interval.text(spec)


def _pair(interval: noise.Interval | None) -> list[float] | None:
    return None if interval is None else [interval.low, interval.high]


def measure_noise(records: Sequence[CellRecord], pairs: Sequence[RankPair]) -> Noise:
    """Intervals over seeds where cells have several, else the residual spread of our fit."""
    ours = [
        r for r in records if r.variant == "separable" and r.top1_values and (r.mult_adds or 0) > 0
    ]
    seeds = tuple(sorted({len(r.top1_values) for r in records if r.top1_values}))
    seed_sd = noise.pooled_sd([r.top1_values for r in records])
    spearman_iv = slope_iv = None
    if pairs:
        slim = [p.slim_top1 for p in pairs]
        spearman_iv = noise.bootstrap_one_seed_per_cell(
            [p.ours_seeds or (p.ours_top1,) for p in pairs], lambda ys: spearman(ys, slim)
        )
    xs = [(r.mult_adds or 0) / 1e6 for r in ours]
    if len(set(xs)) >= 2:

        def slope(ys: list[float]) -> float | None:
            fit = loglinear_fit(xs, ys)
            return None if fit is None else fit.slope

        slope_iv = noise.bootstrap_one_seed_per_cell([r.top1_values for r in ours], slope)
    means = [r.top1 for r in ours if r.top1 is not None]
    residual = noise.residual_sd(xs, means) if len(means) == len(xs) else None
    return Noise(seeds, spearman_iv, slope_iv, seed_sd, residual, len(xs) if residual else 0)


def fidelity(
    records: Sequence[CellRecord],
    checks: Sequence[AnalyticCheck],
    release: str = "2017",
    context: SweepContext | None = None,
) -> Fidelity:
    check_release(release)
    pairs = rank_pairs(records, release)
    ours = [
        (r.mult_adds / 1e6, r.top1)
        for r in records
        if r.variant == "separable" and r.top1 is not None and r.mult_adds
    ]
    all_slim = paper.SLIM_CHECKPOINTS
    return Fidelity(
        checks=tuple(checks),
        release=release,
        spearman=spearman([p.ours_top1 for p in pairs], [p.slim_top1 for p in pairs]),
        spearman_n=len(pairs),
        fit_ours=loglinear_fit([x for x, _ in ours], [y for _, y in ours]),
        fit_reference_same=loglinear_fit(
            [p.slim_macs_m for p in pairs], [p.slim_top1 for p in pairs]
        ),
        fit_reference_all=loglinear_fit(
            [s.macs_m for s in all_slim], [slim_top1(s, release) for s in all_slim]
        ),
        noise=measure_noise(records, pairs),
        context=context or SweepContext(None),
    )
