"""One record per grid cell: the run that answers it (if any), its status and its numbers.

A sweep's ``grid.json`` says which cells were asked for; the store says which runs exist. This
module pairs them, so every later step sees exactly one record per cell, a missing or failed one
included, and never has to ask the store again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mnv1.config import run_name
from mnv1.tracking import schema
from mnv1.tracking.queries import ACTIVE_STATUSES, CellRun, GridCell, SweepRuns

FINISHED = "finished"
RUNNING = "running"
FAILED = "failed"
KILLED = "killed"
MISSING = "missing"
STATUSES: tuple[str, ...] = (FINISHED, RUNNING, FAILED, KILLED, MISSING)

# Which of a cell's runs answers it when several do (a failed try and its rerun): a finished one
# beats a live one, which beats a failed one; then the newest.
_PREFERENCE = {FINISHED: 3, RUNNING: 2, FAILED: 1, KILLED: 1}


def status_of(run: CellRun | None) -> str:
    """MLflow's run status as one of :data:`STATUSES`."""
    if run is None:
        return MISSING
    if run.status in ACTIVE_STATUSES:
        return RUNNING
    return {"FINISHED": FINISHED, "FAILED": FAILED, "KILLED": KILLED}.get(run.status, FAILED)


@dataclass(frozen=True)
class CellRecord:
    """One cell of the sweep's grid and what its run reported.

    Accuracies and throughput are set only for a finished run: the final ``val_top1`` shares its
    name with the per-epoch series, so a running or failed run's value is some epoch's, not the
    result. Costs are set whenever the run logged them (they are logged before training starts).
    """

    name: str
    alpha: float
    resolution: int
    variant: str
    status: str
    run_id: str | None = None
    top1: float | None = None
    """Validation top-1 in percent."""
    top5: float | None = None
    mult_adds: int | None = None
    params: int | None = None
    keras_params: int | None = None
    images_per_sec: float | None = None
    epoch_seconds: float | None = None
    tuned: bool = False
    """The run trained with its cell's tuned recipe (``mnv1-train tuned=...``)."""

    @property
    def finished(self) -> bool:
        return self.status == FINISHED


def _metric_int(run: CellRun, key: str) -> int | None:
    value = run.metrics.get(key)
    return None if value is None else round(value)


def _percent(run: CellRun, key: str) -> float | None:
    value = run.metrics.get(key)
    # Keras reports accuracies as fractions; the paper and this report use percent.
    return None if value is None else 100.0 * value


def record_for(cell: GridCell, run: CellRun | None) -> CellRecord:
    status = status_of(run)
    if run is None:
        return CellRecord(cell.name, cell.alpha, cell.resolution, cell.variant, status)
    done = status == FINISHED
    return CellRecord(
        name=cell.name,
        alpha=cell.alpha,
        resolution=cell.resolution,
        variant=cell.variant,
        status=status,
        run_id=run.run_id,
        top1=_percent(run, schema.METRIC_VAL_TOP1) if done else None,
        top5=_percent(run, schema.METRIC_VAL_TOP5) if done else None,
        mult_adds=_metric_int(run, schema.METRIC_MULT_ADDS),
        params=_metric_int(run, schema.METRIC_PARAMS),
        keras_params=_metric_int(run, schema.METRIC_KERAS_PARAMS),
        images_per_sec=run.metrics.get(schema.METRIC_TRAIN_IPS) if done else None,
        epoch_seconds=run.metrics.get(schema.METRIC_EPOCH_SECONDS) if done else None,
        tuned=run.tags.get(schema.TAG_TUNED) == "true",
    )


def _cells_from_runs(runs: Iterable[CellRun], parent_run_id: str) -> list[GridCell]:
    """The grid, when the parent has no ``grid.json``: one cell per distinct child."""
    cells: dict[str, GridCell] = {}
    for run in runs:
        if run.parent_run_id != parent_run_id or run.alpha is None or run.resolution is None:
            continue
        name = run_name(run.alpha, run.resolution, run.variant)
        cells.setdefault(name, GridCell(name, run.alpha, run.resolution, run.variant, run.run_key))
    return list(cells.values())


def _answers(cell: GridCell, run: CellRun) -> bool:
    if cell.run_key and run.run_key:
        return cell.run_key == run.run_key
    if run.alpha is not None and run.resolution is not None:
        return (run.alpha, run.resolution, run.variant) == (
            cell.alpha,
            cell.resolution,
            cell.variant,
        )
    # A run that failed before it logged its coordinates still carries its name.
    return run.run_name == cell.name


def _best(runs: Sequence[CellRun], parent_run_id: str) -> CellRun | None:
    """The run that answers a cell: its newest, most finished child run of this sweep, or, when
    the sweep has none (it skipped the cell because another sweep had finished it), the newest
    such run of another sweep."""
    children = [r for r in runs if r.parent_run_id == parent_run_id]
    candidates = children or [r for r in runs if status_of(r) == FINISHED]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (_PREFERENCE.get(status_of(r), 0), r.start_time))


def cell_records(sweep: SweepRuns) -> list[CellRecord]:
    """One record per grid cell, in the grid's order (or by α, ρ descending without a grid)."""
    parent_id = sweep.parent.run_id
    if sweep.parent.grid is not None:
        cells = list(sweep.parent.grid)
    else:
        cells = sorted(
            _cells_from_runs(sweep.runs, parent_id),
            key=lambda c: (c.variant != "separable", c.variant, -c.alpha, -c.resolution),
        )
    return [
        record_for(cell, _best([r for r in sweep.runs if _answers(cell, r)], parent_id))
        for cell in cells
    ]


def status_counts(records: Iterable[CellRecord]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for record in records:
        counts[record.status] += 1
    return counts
