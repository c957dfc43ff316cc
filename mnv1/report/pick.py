"""Pick the cell to deploy: the best finished cell of a sweep within a device budget.

MobileNets exist to meet a budget (the paper's Section 4: width and resolution trade accuracy
for latency and size); ``mnv1-report --register`` turns a sweep of variants into the one variant
to ship. The budget is a latency (measured at batch 1, float32, one thread: the metric
``latency_ms_fp32_1t`` that the LiteRT export logs) or a number of mult-adds (exact, on every
cell). Pure logic on the report's dataclasses; the registry write is ``mnv1.tracking.models``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mnv1.tracking import schema
from mnv1.tracking.queries import CellRun

# Measured by the LiteRT export of a cell (batch 1, float32 model, one CPU thread), in ms.
LATENCY_METRIC = "latency_ms_fp32_1t"
METRICS = (schema.METRIC_VAL_TOP1, schema.METRIC_VAL_TOP5)  # higher is better


@dataclass(frozen=True)
class Budget:
    """At most one limit; neither: any cell fits."""

    max_latency_ms: float | None = None
    max_mult_adds: float | None = None

    @property
    def metric(self) -> str | None:
        """The run metric the budget limits."""
        if self.max_latency_ms is not None:
            return LATENCY_METRIC
        if self.max_mult_adds is not None:
            return schema.METRIC_MULT_ADDS
        return None

    @property
    def limit(self) -> float | None:
        return self.max_latency_ms if self.max_latency_ms is not None else self.max_mult_adds

    def describe(self) -> str:
        if self.max_latency_ms is not None:
            return f"--max-latency-ms {self.max_latency_ms:g}"
        if self.max_mult_adds is not None:
            return f"--max-mult-adds {self.max_mult_adds:,.0f}"
        return "no budget"


class NothingFits(ValueError):
    """No finished cell is within the budget; ``closest`` is the one nearest to it."""

    def __init__(self, message: str, closest: CellRun) -> None:
        super().__init__(message)
        self.closest = closest


@dataclass(frozen=True)
class Choice:
    winner: CellRun
    metric: str
    budget: Budget
    finished: int
    """Finished cells with the metric."""
    fitting: int
    """Of those, the ones within the budget."""
    runner_up: CellRun | None

    @property
    def reason(self) -> str:
        """Why this cell won, in one sentence."""
        w, metric = self.winner, self.metric
        within = (
            f"the highest {metric} of the {self.fitting} of {self.finished} finished cells "
            f"within {self.budget.describe()}"
            if self.budget.metric
            else f"the highest {metric} of the {self.finished} finished cells (no budget)"
        )
        text = f"{describe(w)}: {metric} {w.metrics[metric]:.4f}, {within}"
        if self.runner_up is not None:
            r = self.runner_up
            text += f"; next: {r.run_name} at {r.metrics[metric]:.4f}"
        return text


def describe(run: CellRun) -> str:
    """``mnv1_a0.5_r48 (α 0.5, ρ 48, 1,234,567 mult-adds, 1.20 ms)``: what a budget reads."""
    parts = [f"α {run.alpha:g}" if run.alpha is not None else "α ?"]
    parts.append(f"ρ {run.resolution}" if run.resolution is not None else "ρ ?")
    mult_adds = run.metrics.get(schema.METRIC_MULT_ADDS)
    if mult_adds is not None:
        parts.append(f"{mult_adds:,.0f} mult-adds")
    latency = run.metrics.get(LATENCY_METRIC)
    if latency is not None:
        parts.append(f"{latency:.2f} ms")
    return f"{run.run_name} ({', '.join(parts)})"


def pick(runs: Sequence[CellRun], metric: str, budget: Budget, sweep: str) -> Choice:
    """The finished cell with the highest ``metric`` within ``budget`` (ties: fewer mult-adds,
    then the name). ValueError when no cell can be judged; NothingFits naming the closest cell
    when none is within the budget."""
    if metric not in METRICS:
        raise ValueError(f"--metric {metric!r}: must be one of {', '.join(METRICS)}")
    finished = [r for r in runs if r.status == "FINISHED" and metric in r.metrics]
    if not finished:
        raise ValueError(f"sweep {sweep} has no FINISHED cell with metric {metric}")
    key, limit = budget.metric, budget.limit
    fitting = finished
    if key is not None and limit is not None:
        measured = [r for r in finished if key in r.metrics]
        if not measured:
            raise ValueError(
                f"{budget.describe()}: no cell of sweep {sweep} has a measured latency "
                f"(metric {key}, logged by the LiteRT export); use --max-mult-adds instead"
            )
        fitting = [r for r in measured if r.metrics[key] <= limit]
        if not fitting:
            closest = min(measured, key=lambda r: (r.metrics[key], r.run_name))
            over = closest.metrics[key] / limit - 1
            raise NothingFits(
                f"no cell of sweep {sweep} fits {budget.describe()}: the closest is "
                f"{describe(closest)}, {over:.1%} over",
                closest,
            )

    def rank(r: CellRun) -> tuple[float, float, str]:
        mult_adds = r.metrics.get(schema.METRIC_MULT_ADDS, float("inf"))
        return (-r.metrics[metric], mult_adds, r.run_name)

    ordered = sorted(fitting, key=rank)
    return Choice(
        winner=ordered[0],
        metric=metric,
        budget=budget,
        finished=len(finished),
        fitting=len(fitting),
        runner_up=ordered[1] if len(ordered) > 1 else None,
    )


def version_tags(choice: Choice, sweep: str) -> dict[str, str]:
    """The registry version's tags: what it is (α, ρ, mult-adds, latency when measured), how
    good, under which budget, and where it came from (the sweep and the run)."""
    w = choice.winner
    tags = {
        "alpha": f"{w.alpha:g}" if w.alpha is not None else "",
        "resolution": str(w.resolution) if w.resolution is not None else "",
        "mult_adds": f"{w.metrics.get(schema.METRIC_MULT_ADDS, float('nan')):.0f}",
        choice.metric: f"{w.metrics[choice.metric]:.6g}",
        "budget": choice.budget.describe(),
        "sweep": sweep,
        "run_id": w.run_id,
        "cell": w.run_name,
    }
    if LATENCY_METRIC in w.metrics:
        tags[LATENCY_METRIC] = f"{w.metrics[LATENCY_METRIC]:.6g}"
    return tags
