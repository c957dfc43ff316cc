"""``mnv1-report --compare A B``: is the difference between two variants larger than the noise?

A and B are cell names of one sweep (``mnv1_a0.5_r160``: all its finished seeds) or run ids (one
run; a unique prefix will do). The answer is the difference of mean val_top1 with a 95% interval
(``mnv1.report.noise.difference``): Welch's t interval when both sides have two seeds or more,
else a t interval from the sweep's pooled seed-to-seed spread, else, in a sweep of one seed per
cell, from the residual spread around its log-linear fit (an upper bound). An interval that
covers zero is reported as "not distinguishable from noise".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mnv1.report import noise
from mnv1.report.records import CellRecord

NOT_DISTINGUISHABLE = "not distinguishable from noise"


@dataclass(frozen=True)
class Side:
    label: str
    """What the user asked for, resolved: ``cell mnv1_a0.5_r160`` or ``run <id> (cell, seed)``."""
    values: tuple[float, ...]
    """Top-1 (percent) of its finished runs."""


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    difference: noise.Difference

    def text(self) -> str:
        d = self.difference
        lines = [
            f"A: {self.a.label}: {_summary(self.a.values)}",
            f"B: {self.b.label}: {_summary(self.b.values)}",
        ]
        head = f"difference A - B in val_top1: {d.value:+.2f} pp"
        if d.interval is None:
            lines.append(f"{head}; no interval ({d.method})")
            lines.append(f"{NOT_DISTINGUISHABLE} cannot be ruled out: there is no noise estimate")
            return "\n".join(lines) + "\n"
        lines.append(f"{head}, 95% interval {d.interval.text('+.2f')} pp ({d.method})")
        if d.distinguishable:
            side = "A" if d.value > 0 else "B"
            lines.append(f"distinguishable: the interval excludes zero ({side} is higher)")
        else:
            lines.append(f"{NOT_DISTINGUISHABLE}: the interval covers zero")
        return "\n".join(lines) + "\n"


def _summary(values: Sequence[float]) -> str:
    mean, sd = noise.mean_sd(values)
    assert mean is not None
    if sd is None:
        return f"{mean:.2f}% (1 run)"
    return f"{mean:.2f} ± {sd:.2f}% (mean ± sd of {len(values)} seeds)"


def resolve(records: Sequence[CellRecord], wanted: str) -> Side:
    """A cell name, or a run id (or its unique prefix) of one of the sweep's runs."""
    for cell in records:
        if cell.name == wanted:
            if not cell.top1_values:
                raise ValueError(
                    f"cell {wanted!r} has no finished run (status {cell.status}): no result"
                )
            return Side(f"cell {wanted}", cell.top1_values)
    runs = [(cell, r) for cell in records for r in cell.runs or (cell,) if r.run_id]
    matches = [(c, r) for c, r in runs if r.run_id == wanted] or [
        (c, r) for c, r in runs if r.run_id and r.run_id.startswith(wanted)
    ]
    if len(matches) == 1:
        cell, run = matches[0]
        if run.top1 is None or not run.finished:
            raise ValueError(f"run {run.run_id} ({cell.name}) is {run.status}: it has no result")
        seed = "" if run.seed is None else f", seed {run.seed}"
        return Side(f"run {run.run_id} ({cell.name}{seed})", (run.top1,))
    names = ", ".join(c.name for c in records)
    problem = "is a prefix of several run ids" if matches else "is no cell name or run id"
    raise ValueError(f"compare: {wanted!r} {problem} of this sweep; its cells: {names}")


def compare(records: Sequence[CellRecord], a: str, b: str) -> Comparison:
    side_a, side_b = resolve(records, a), resolve(records, b)
    pooled = noise.pooled_sd([r.top1_values for r in records])
    source = "the sweep's pooled seed-to-seed spread"
    if pooled is None:
        pooled, source = _residual_noise(records), "the residual spread around the log-linear fit"
    return Comparison(
        side_a, side_b, noise.difference(side_a.values, side_b.values, pooled, source)
    )


def _residual_noise(records: Sequence[CellRecord]) -> tuple[float, int] | None:
    cells = [
        r
        for r in records
        if r.variant == "separable" and r.top1 is not None and (r.mult_adds or 0) > 0
    ]
    xs = [(r.mult_adds or 0) / 1e6 for r in cells]
    sd = noise.residual_sd(xs, [r.top1 for r in cells if r.top1 is not None])
    return None if sd is None else (sd, len(cells) - 2)
