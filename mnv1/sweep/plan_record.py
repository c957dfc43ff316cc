"""The plan on the sweep's parent run, beside what the sweep really took, and each cell's line of
live progress.

The estimate covers the cells one after another (``mnv1.sweep.plan``), so the actual figure logged
beside it is the same span: from just before the first cell to just after the last. A relaunch
skips finished cells; ``plan_estimate_trained_s`` is the estimate of the cells it did train. Under a
parallel launcher the cells report to other processes, so the cells to train are read from the
store as the sweep starts (``to_train``) and the span is timed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mnv1.sweep.orchestrate import CellOutcome, SweepRef
from mnv1.sweep.plan import Plan, SweepProgress, format_plan, progress_bar
from mnv1.timing import METRIC_PLAN
from mnv1.tracking import runs

PLAN_ARTIFACT = "plan.txt"
METRIC_PLAN_ESTIMATE = "plan_estimate_s"
METRIC_PLAN_ACTUAL = "plan_actual_s"
METRIC_PLAN_ESTIMATE_TRAINED = "plan_estimate_trained_s"
TAG_PLAN_PROBE = "mnv1.plan.probe"
TAG_PLAN_BUDGET = "mnv1.plan.steps_per_epoch"
TAG_PLAN_TARGET = "mnv1.plan.target_minutes"
# How many cells each source estimated ("finished 12, probe 2", mnv1.sweep.plan.SOURCES).
TAG_PLAN_SOURCES = "mnv1.plan.sources"


def record_estimate(sweep: SweepRef, plan: Plan, seconds: float) -> None:
    """The plan as printed, its probe and budget, its total, and how long planning took."""
    runs.log_text(sweep.uri, sweep.parent_run_id, PLAN_ARTIFACT, format_plan(plan))
    tags: dict[str, str] = {}
    if plan.probe is not None:
        tags[TAG_PLAN_PROBE] = f"{plan.probe.key} on {plan.probe.host} ({plan.probe.measured_at})"
    sources = plan.sources()
    if sources:
        tags[TAG_PLAN_SOURCES] = ", ".join(f"{src} {n}" for src, n in sources.items())
    if plan.budget is not None:
        tags[TAG_PLAN_BUDGET] = str(plan.budget.steps_per_epoch)
        tags[TAG_PLAN_TARGET] = f"{plan.budget.target_s / 60:g}"
    if tags:
        runs.set_tags(sweep.uri, sweep.parent_run_id, tags)
    metrics = {METRIC_PLAN: seconds}
    if plan.total_s is not None:
        metrics[METRIC_PLAN_ESTIMATE] = plan.total_s
    runs.log_metrics(sweep.uri, sweep.parent_run_id, metrics)


def record_actual(sweep: SweepRef, seconds: float, estimated_s: float) -> None:
    """The cells' wall time of this launch, and the estimate of the cells it trained (a
    relaunch trains only some: that, not the whole plan, is what its time compares with)."""
    runs.log_metrics(
        sweep.uri,
        sweep.parent_run_id,
        {METRIC_PLAN_ACTUAL: seconds, METRIC_PLAN_ESTIMATE_TRAINED: estimated_s},
    )


def to_train(sweep: SweepRef, keys: Iterable[str]) -> list[str]:
    """The run keys without a FINISHED run, read as the sweep starts: the cells this launch will
    train (it skips the others)."""
    states = runs.cell_states(sweep.uri, sweep.experiment_id, keys)
    return [key for key, state in states.items() if state.status != runs.FINISHED]


def record_parallel_actual(
    sweep: SweepRef, progress: SweepProgress, trained: Sequence[str]
) -> None:
    """``record_actual`` for a launch whose cells ran in other processes (joblib, SLURM, Ray),
    which report no progress to this one: the span from before the first cell to after the last,
    beside the estimate of the cells it was to train. The estimate adds the cells up one after
    another, so with cells running at once the actual comes out below it."""
    estimated = sum(progress.estimates.get(key, 0.0) for key in trained)
    if estimated > 0:
        estimated += progress.launch_s  # the zygote's start, once, where the plan counted it
        record_actual(sweep, progress.clock() - progress.started, estimated)


def cell_line(
    progress: SweepProgress, outcome: CellOutcome, sweep: SweepRef | None, tty: bool
) -> str:
    """The progress line for a cell that just ended (its val_top1 read back from its run)."""
    top1 = None
    if sweep is not None:
        state = runs.cell_states(sweep.uri, sweep.experiment_id, [outcome.run_key])
        top1 = state[outcome.run_key].val_top1
    line = progress.cell_done(outcome.run_key, outcome.name, outcome.action, outcome.status, top1)
    if tty:
        line = f"{progress_bar(len(progress.done), progress.total)} {line}"
    return line
