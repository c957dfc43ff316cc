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
from mnv1.tracking import schema

NOT_DISTINGUISHABLE = "not distinguishable from noise"
TOP1 = schema.METRIC_VAL_TOP1
# Metrics besides val_top1 that --metric takes: the deploy-side numbers of an exported sweep
# (``latency_ms_<fp32|int8>[_p90]_<N>t`` and these).
DEPLOY_METRICS = (
    schema.METRIC_TFLITE_BYTES,
    schema.METRIC_TFLITE_INT8_BYTES,
    schema.METRIC_VAL_TOP1_INT8,
    schema.METRIC_INT8_TOP1_DROP,
)


def check_metric(metric: str) -> None:
    """``--metric`` takes val_top1, a latency metric or a deploy-side size/accuracy metric."""
    if metric == TOP1 or metric in DEPLOY_METRICS or metric.startswith("latency_ms_"):
        return
    raise ValueError(
        f"--metric={metric!r}: must be {TOP1}, a latency metric (latency_ms_fp32_1t, "
        f"latency_ms_int8_p90_1t, ...) or one of {', '.join(DEPLOY_METRICS)}"
    )


def _unit(metric: str) -> tuple[str, str, float]:
    """How a metric prints: (unit of values, unit of differences, scale from the logged value)."""
    if metric.startswith("latency_ms_"):
        return " ms", " ms", 1.0
    if metric.endswith("_bytes"):
        return " bytes", " bytes", 1.0
    return "%", " pp", 100.0  # accuracies are logged as fractions


@dataclass(frozen=True)
class Side:
    label: str
    """What the user asked for, resolved: ``cell mnv1_a0.5_r160`` or ``run <id> (cell, seed)``."""
    values: tuple[float, ...]
    """The metric of its finished runs (top-1 in percent)."""


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    difference: noise.Difference
    metric: str = TOP1

    def text(self) -> str:
        d = self.difference
        unit, delta = _unit(self.metric)[:2]
        lines = [
            f"A: {self.a.label}: {_summary(self.a.values, unit)}",
            f"B: {self.b.label}: {_summary(self.b.values, unit)}",
        ]
        head = f"difference A - B in {self.metric}: {d.value:+.2f}{delta}"
        if d.interval is None:
            lines.append(f"{head}; no interval ({d.method})")
            lines.append(f"{NOT_DISTINGUISHABLE} cannot be ruled out: there is no noise estimate")
            return "\n".join(lines) + "\n"
        lines.append(f"{head}, 95% interval {d.interval.text('+.2f')}{delta} ({d.method})")
        if d.distinguishable:
            side = "A" if d.value > 0 else "B"
            lines.append(f"distinguishable: the interval excludes zero ({side} is higher)")
        else:
            lines.append(f"{NOT_DISTINGUISHABLE}: the interval covers zero")
        return "\n".join(lines) + "\n"


def _summary(values: Sequence[float], unit: str = "%") -> str:
    mean, sd = noise.mean_sd(values)
    assert mean is not None
    if sd is None:
        return f"{mean:.2f}{unit} (1 run)"
    return f"{mean:.2f} ± {sd:.2f}{unit} (mean ± sd of {len(values)} seeds)"


def _values(record: CellRecord, metric: str) -> tuple[float, ...]:
    if metric == TOP1:
        return record.top1_values
    scale = _unit(metric)[2]
    return tuple(scale * v for v in record.metric_values(metric))


def resolve(records: Sequence[CellRecord], wanted: str, metric: str = TOP1) -> Side:
    """A cell name, or a run id (or its unique prefix) of one of the sweep's runs."""
    for cell in records:
        if cell.name == wanted:
            values = _values(cell, metric)
            if not values:
                if cell.top1_values:
                    raise ValueError(
                        f"cell {wanted!r} has no {metric} (was the sweep run with "
                        "export.enabled=true?)"
                    )
                raise ValueError(
                    f"cell {wanted!r} has no finished run (status {cell.status}): no result"
                )
            return Side(f"cell {wanted}", values)
    runs = [(cell, r) for cell in records for r in cell.runs or (cell,) if r.run_id]
    matches = [(c, r) for c, r in runs if r.run_id == wanted] or [
        (c, r) for c, r in runs if r.run_id and r.run_id.startswith(wanted)
    ]
    if len(matches) == 1:
        cell, run = matches[0]
        if run.top1 is None or not run.finished:
            raise ValueError(f"run {run.run_id} ({cell.name}) is {run.status}: it has no result")
        values = _values(run, metric)
        if not values:
            raise ValueError(f"run {run.run_id} ({cell.name}) has no {metric}")
        seed = "" if run.seed is None else f", seed {run.seed}"
        return Side(f"run {run.run_id} ({cell.name}{seed})", values)
    names = ", ".join(c.name for c in records)
    problem = "is a prefix of several run ids" if matches else "is no cell name or run id"
    raise ValueError(f"compare: {wanted!r} {problem} of this sweep; its cells: {names}")


def compare(records: Sequence[CellRecord], a: str, b: str, metric: str = TOP1) -> Comparison:
    """A - B in ``metric`` (val_top1 by default; a latency or another deploy-side metric)."""
    check_metric(metric)
    side_a, side_b = resolve(records, a, metric), resolve(records, b, metric)
    pooled = noise.pooled_sd([_values(r, metric) for r in records])
    source = "the sweep's pooled seed-to-seed spread"
    if pooled is None and metric == TOP1:
        # The log-linear fit of top-1 on mult-adds is a model of accuracy only.
        pooled, source = _residual_noise(records), "the residual spread around the log-linear fit"
    return Comparison(
        side_a, side_b, noise.difference(side_a.values, side_b.values, pooled, source), metric
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
