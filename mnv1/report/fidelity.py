"""How faithfully a sweep reproduces the paper, in a few numbers.

* **Analytic checks**: each mult-adds, params or share value the paper prints against our exact
  count, rounded to the decimals the paper printed. A printed value listed in ``mnv1.paper.ERRATA``
  is excepted when our count rounds to the erratum's correct value instead.
* **Rank agreement**: Spearman's ρ between our top-1 and the TF-slim table's over the grid cells
  both have. Training budgets differ by orders of magnitude, so the ranking (which model beats
  which) is what a short sweep can reproduce, not the accuracies themselves.
* **Trade-off slope**: the least-squares slope of top-1 (percent) against log10(mult-adds), the
  paper's "log linear dependence" (Figure 4), for ours and for the reference.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from mnv1 import paper
from mnv1.report.records import CellRecord
from mnv1.report.tables import Column, Table

PASS = "pass"
FAIL = "FAIL"
ERRATUM = "erratum"

# TF-slim released two sets of float checkpoints whose accuracies differ (reference file §2).
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

    @property
    def ours_rounded(self) -> str:
        return str(_round(self.ours, self.decimals))


def check_printed(table: str, item: str, ours: float, printed: float) -> AnalyticCheck:
    decimals = paper.printed_decimals(printed)
    erratum = paper.erratum_for(table, item)
    if rounds_to(ours, printed, decimals):
        verdict = PASS
    elif erratum is not None and _matches_correction(ours, erratum.correct, decimals):
        verdict = ERRATUM
    else:
        verdict = FAIL
    return AnalyticCheck(table, item, ours, printed, decimals, verdict, erratum)


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


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank (as Spearman's ρ requires)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None  # a constant series has no rank order to agree with
    return sxy / math.sqrt(sxx * syy)


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Spearman's rank correlation, or None for fewer than 2 pairs or a constant series."""
    if len(xs) != len(ys):
        raise ValueError(f"spearman needs pairs, got {len(xs)} x values and {len(ys)} y values")
    if len(xs) < 2:
        return None
    return _pearson(_ranks(xs), _ranks(ys))


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


def rank_pairs(records: Iterable[CellRecord], release: str) -> list[RankPair]:
    """Finished separable cells with a top-1 that the TF-slim table also lists."""
    pairs = []
    for r in records:
        slim = slim_row_or_none(r.alpha, r.resolution)
        if r.variant != "separable" or r.top1 is None or slim is None:
            continue
        ours_ma = None if r.mult_adds is None else r.mult_adds / 1e6
        pairs.append(RankPair(r.name, r.top1, slim_top1(slim, release), ours_ma, slim.macs_m))
    return pairs


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
            columns=(Column("Measure"), Column("Value"), Column("n", "d")),
        )
        checked = len(self.checks)
        table.add(
            "Analytic columns (printed mult-adds, params, shares)",
            f"{self.count(PASS)} pass, {self.count(ERRATUM)} paper errata excepted, "
            f"{self.count(FAIL)} fail",
            checked,
        )
        table.add(
            f"Spearman ρ, our top-1 vs TF-slim {rel} top-1",
            _fmt(self.spearman, "+.3f"),
            self.spearman_n,
        )
        for label, fit in (
            ("Slope, ours (pp top-1 per decade of mult-adds)", self.fit_ours),
            (f"Slope, TF-slim {rel}, same cells", self.fit_reference_same),
            (f"Slope, TF-slim {rel}, all 16 models", self.fit_reference_all),
        ):
            table.add(label, _fmt(None if fit is None else fit.slope, "+.2f"), _n(fit))
        table.notes.append(
            "Spearman ρ and the slopes need at least 2 finished cells (slopes: 2 distinct "
            "mult-adds); — where there are fewer. The reference slopes use the TF-slim table's "
            "own MAC column."
        )
        return table

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
                Column("Correct value"),
            ),
        )
        for c in self.checks:
            table.add(
                c.table,
                c.item,
                f"{c.printed:.{c.decimals}f}",
                c.ours,
                c.ours_rounded,
                c.verdict,
                None if c.erratum is None else c.erratum.correct,
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
        }


def _fmt(value: float | None, spec: str) -> str | None:
    return None if value is None else format(value, spec)


def _n(fit: LogLinearFit | None) -> int | None:
    return None if fit is None else fit.n


def fidelity(
    records: Sequence[CellRecord], checks: Sequence[AnalyticCheck], release: str = "2017"
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
    )
