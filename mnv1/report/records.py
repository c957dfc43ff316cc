"""One record per grid cell: the runs that answer it (one per seed), its status and its numbers.

A sweep's ``grid.json`` says which runs were asked for (one entry per cell and seed); the store
says which runs exist. This module pairs them, then groups a cell's seeds into one record, so
every later step sees exactly one record per cell, a missing or failed one included, with its
per-seed values beside the mean, and never has to ask the store again.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

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
    seed: int | None = None
    """``train.seed`` of a one-run record; None on a cell's combined record of several seeds."""
    runs: tuple[CellRecord, ...] = ()
    """The cell's runs, one per seed, each a one-run record (empty on a one-run record itself).

    On a cell's combined record ``top1``, ``top5``, ``images_per_sec`` and ``epoch_seconds`` are
    means over the finished seeds (set when at least one finished), ``status`` is ``finished``
    only when every seed finished, else the state of the least finished one, and ``run_id`` is
    set only when the cell has one run."""
    tuned: bool = False
    """The run trained with its cell's tuned recipe (``mnv1-train tuned=...``)."""
    final: dict[str, float] = field(default_factory=dict, compare=False)
    """Every final metric of a finished run as logged (fractions, not percent; the deploy-side
    ``tflite_bytes``, ``latency_ms_*``); on a combined record, the mean over finished seeds."""

    def metric(self, key: str) -> float | None:
        return self.final.get(key)

    def metric_values(self, key: str) -> tuple[float, ...]:
        """``key`` of each finished seed that logged it (``top1_values`` for any metric)."""
        runs = self.runs or (self,)
        return tuple(
            v for r in runs if r.status == FINISHED and (v := r.final.get(key)) is not None
        )

    @property
    def finished(self) -> bool:
        return self.status == FINISHED

    @property
    def top1_values(self) -> tuple[float, ...]:
        """Top-1 of each finished seed (of this run alone, on a one-run record)."""
        runs = self.runs or (self,)
        return tuple(r.top1 for r in runs if r.status == FINISHED and r.top1 is not None)

    @property
    def seeds(self) -> int:
        """How many runs (seeds) the grid asked of this cell."""
        return len(self.runs) or 1

    @property
    def top1_sd(self) -> float | None:
        """Sample standard deviation of top-1 over the finished seeds (None below two)."""
        values = self.top1_values
        return statistics.stdev(values) if len(values) >= 2 else None


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
        return CellRecord(
            cell.name, cell.alpha, cell.resolution, cell.variant, status, seed=cell.seed
        )
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
        seed=cell.seed if cell.seed is not None else run.seed,
        final=dict(run.metrics) if done else {},
    )


# A cell with some seeds unfinished shows the state of its least finished seed: a live run is
# still coming, a failed or killed one needs a relaunch, a missing one was never started.
_CELL_STATUS_ORDER = (RUNNING, FAILED, KILLED, MISSING)


def _mean(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return statistics.fmean(found) if found else None


def combine(runs: Sequence[CellRecord]) -> CellRecord:
    """One record for a cell from its one-run records (one per seed, all of the same cell)."""
    if len(runs) == 1:
        return replace(runs[0], runs=(runs[0],))
    first = runs[0]
    done = [r for r in runs if r.status == FINISHED]
    pending = {r.status for r in runs} - {FINISHED}
    status = next((s for s in _CELL_STATUS_ORDER if s in pending), FINISHED)

    def counted(attr: str) -> int | None:
        return next((v for r in runs if (v := getattr(r, attr)) is not None), None)

    return CellRecord(
        name=first.name,
        alpha=first.alpha,
        resolution=first.resolution,
        variant=first.variant,
        status=status,
        top1=_mean(r.top1 for r in done),
        top5=_mean(r.top5 for r in done),
        mult_adds=counted("mult_adds"),
        params=counted("params"),
        keras_params=counted("keras_params"),
        images_per_sec=_mean(r.images_per_sec for r in done),
        epoch_seconds=_mean(r.epoch_seconds for r in done),
        tuned=first.tuned,
        runs=tuple(runs),
        final={
            key: statistics.fmean(r.final[key] for r in done if key in r.final)
            for key in {k for r in done for k in r.final}
        },
    )


def _cells_from_runs(runs: Iterable[CellRun], parent_run_id: str) -> list[GridCell]:
    """The grid, when the parent has no ``grid.json``: one entry per distinct child cell and
    seed."""
    cells: dict[tuple[str, int | None], GridCell] = {}
    for run in runs:
        if run.parent_run_id != parent_run_id or run.alpha is None or run.resolution is None:
            continue
        name = run_name(run.alpha, run.resolution, run.variant)
        cells.setdefault(
            (name, run.seed),
            GridCell(name, run.alpha, run.resolution, run.variant, run.run_key, run.seed),
        )
    return list(cells.values())


def _answers(cell: GridCell, run: CellRun) -> bool:
    if cell.run_key and run.run_key:
        return cell.run_key == run.run_key
    if cell.seed is not None and run.seed is not None and cell.seed != run.seed:
        return False  # the same cell, another seed
    if run.alpha is not None and run.resolution is not None:
        return (run.alpha, run.resolution, run.variant) == (
            cell.alpha,
            cell.resolution,
            cell.variant,
        )
    # A run that failed before it logged its coordinates still carries its cell's name.
    return cell.name in (run.cell, run.run_name)


def _best(runs: Sequence[CellRun], parent_run_id: str) -> CellRun | None:
    """The run that answers a cell: its newest, most finished child run of this sweep, or, when
    the sweep has none (it skipped the cell because another sweep had finished it), the newest
    such run of another sweep."""
    children = [r for r in runs if r.parent_run_id == parent_run_id]
    candidates = children or [r for r in runs if status_of(r) == FINISHED]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (_PREFERENCE.get(status_of(r), 0), r.start_time))


def run_records(sweep: SweepRuns) -> list[CellRecord]:
    """One record per grid entry (a cell and seed), in the grid's order (or by α, ρ descending,
    then seed, without a grid)."""
    parent_id = sweep.parent.run_id
    if sweep.parent.grid is not None:
        cells = list(sweep.parent.grid)
    else:
        cells = sorted(
            _cells_from_runs(sweep.runs, parent_id),
            key=lambda c: (
                c.variant != "separable",
                c.variant,
                -c.alpha,
                -c.resolution,
                -1 if c.seed is None else c.seed,
            ),
        )
    return [
        record_for(cell, _best([r for r in sweep.runs if _answers(cell, r)], parent_id))
        for cell in cells
    ]


def cell_records(sweep: SweepRuns) -> list[CellRecord]:
    """One record per grid cell (its seeds combined), in the order the grid first names them."""
    by_cell: dict[str, list[CellRecord]] = {}
    for record in run_records(sweep):
        by_cell.setdefault(record.name, []).append(record)
    return [combine(runs) for runs in by_cell.values()]


def status_counts(records: Iterable[CellRecord]) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    for record in records:
        counts[record.status] += 1
    return counts
