"""A sweep as a whole: its key, its parent MLflow run, its data, and its final status matrix.

The CLI expands the grid (one RunConfig per cell) and calls ``start_sweep`` once before any cell
runs, then ``finish_sweep`` once after the last. In between each cell runs on its own
(``mnv1.sweep.orchestrate.run_cell``), possibly in other processes or on other hosts; the parent
run's
id reaches them through the ``SweepRef`` environment variables.

Relaunching the same sweep (same cells, same base config) finds and reuses its parent run, so a
relaunch adds no run at all, only the cells that still need work. ``tracking.rerun=true`` starts
a fresh parent and fresh cells.
"""

from __future__ import annotations

import json
import logging
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from mnv1 import interrupt, tables
from mnv1.config import RunConfig, cell_name, to_dict
from mnv1.run_key import run_key, short_key
from mnv1.sweep.orchestrate import SweepRef
from mnv1.timing import METRIC_PREPARE, METRIC_REPORT, METRIC_SWEEP_FINISH, METRIC_SWEEP_START
from mnv1.tracking import runs, schema, ui
from mnv1.tracking.store import ensure_experiment, resolve_uri
from mnv1.tracking.uri import is_http

log = logging.getLogger(__name__)

GRID_ARTIFACT = "grid.json"
SWEEP_CONFIG_ARTIFACT = "sweep_config.yaml"
MATRIX_ARTIFACT = "status_matrix.md"
TAG_CELLS = "mnv1.cells"
TAG_CELLS_FINISHED = "mnv1.cells_finished"
TAG_LAUNCHER = "mnv1.launcher"


class SweepBusyError(RuntimeError):
    """The same sweep is already running in a live process."""


def sweep_key(cells: Sequence[RunConfig]) -> str:
    """A key for the sweep: the set of its cells' run keys (each covers the base config and the
    cell's grid values), so the same grid over the same base config finds the same parent."""
    return short_key({"study": cells[0].study, "cells": sorted(run_key(c) for c in cells)})


def seeded(cells: Sequence[RunConfig]) -> bool:
    """Whether some cell of the grid runs with more than one seed (seeds as a sweep axis)."""
    seeds: dict[str, set[int]] = {}
    for c in cells:
        seeds.setdefault(cell_name(c), set()).add(c.train.seed)
    return any(len(s) > 1 for s in seeds.values())


def grid_document(cells: Sequence[RunConfig]) -> dict[str, list[dict[str, object]]]:
    """The grid definition stored on the parent run as grid.json (the report reads it): one
    entry per run, so a cell swept over seeds has one entry per seed, all with its name."""
    return {
        "cells": [
            {
                "name": cell_name(c),
                "alpha": c.model.alpha,
                "resolution": c.model.resolution,
                "variant": c.model.variant,
                "seed": c.train.seed,
                "run_key": run_key(c),
            }
            for c in cells
        ]
    }


def prepare_data(cells: Sequence[RunConfig]) -> dict[str, str]:
    """Prepare each distinct dataset of the grid once, before cells fan out (so parallel cells
    never race to build it); returns the fingerprint tags of the grid's dataset."""
    # Importing the data layer starts TensorFlow, which only a sweep that runs needs.
    from mnv1.data.prepare import prepare

    tags: dict[str, str] = {}
    seen: set[str] = set()
    for cfg in cells:
        ident = json.dumps(to_dict(cfg.data), sort_keys=True, default=str)
        if ident in seen:
            continue
        seen.add(ident)
        fingerprint = prepare(cfg.data)
        log.info(
            "dataset %s %s ready: %s", fingerprint.name, fingerprint.version, fingerprint.splits
        )
        if len(seen) == 1:
            tags = fingerprint.as_tags()
    return tags


def _owner_text(run: runs.RunInfo) -> str:
    return f"pid {run.tags.get(schema.TAG_PID)} on {run.tags.get(schema.TAG_HOST)}"


def start_sweep(cells: Sequence[RunConfig], sweep_config_text: str, launcher: str) -> SweepRef:
    """Create the experiment, reconcile runs of dead launches, prepare the data, and open the
    sweep's parent run (reusing it on a relaunch). Call once, before any cell runs."""
    if not cells:
        raise ValueError("a sweep needs at least one cell")
    started = time.perf_counter()
    first = cells[0]
    uri = resolve_uri(first.tracking.uri)
    interrupt.phase("store")
    experiment_id = ensure_experiment(uri, first.tracking.experiment)

    for run in runs.reconcile_stale(uri, experiment_id):
        log.warning(
            "run %s (%s) was left RUNNING by a dead process: marked KILLED", run.run_id, run.name
        )

    interrupt.phase("data")
    preparing = time.perf_counter()
    data_tags = prepare_data(cells)
    # A Ctrl-C during preparation can be raised inside a GC callback and dropped: stop here.
    interrupt.check()
    prepare_seconds = time.perf_counter() - preparing
    key = sweep_key(cells)
    rerun = any(c.tracking.rerun for c in cells)
    owner = runs.Owner.current()
    parent = (
        None
        if rerun
        else runs.newest(uri, experiment_id, schema.KIND_SWEEP, {schema.TAG_SWEEP: key})
    )
    if parent is not None:
        if parent.status == runs.RUNNING and runs.owner_alive(parent.tags) is not False:
            raise SweepBusyError(
                f"sweep {key} of study {first.study!r} is already running (parent run "
                f"{parent.run_id}, {_owner_text(parent)}); wait for it, or stop it first"
            )
        runs.reopen(uri, parent, owner, counter=runs.TAG_LAUNCHES)
        runs.set_tags(uri, parent.run_id, {TAG_LAUNCHER: launcher})
        _log_start_timings(uri, parent.run_id, started, prepare_seconds)
        log.info("sweep %s: relaunch, reusing parent run %s", key, parent.run_id)
        return SweepRef(parent.run_id, key, experiment_id, uri, seeded(cells))

    tags = {
        schema.TAG_KIND: schema.KIND_SWEEP,
        schema.TAG_SWEEP: key,
        schema.TAG_STUDY: first.study,
        TAG_CELLS: str(len(cells)),
        TAG_LAUNCHER: launcher,
        runs.TAG_LAUNCHES: "1",
        **owner.tags(),
        **data_tags,
    }
    parent_id = runs.create(uri, experiment_id, f"{first.study}_sweep_{key[:8]}", tags)
    runs.log_json(uri, parent_id, GRID_ARTIFACT, grid_document(cells))
    runs.log_text(uri, parent_id, SWEEP_CONFIG_ARTIFACT, sweep_config_text)
    _log_start_timings(uri, parent_id, started, prepare_seconds)
    log.info("sweep %s: new parent run %s with %d cells", key, parent_id, len(cells))
    return SweepRef(parent_id, key, experiment_id, uri, seeded(cells))


def _log_start_timings(uri: str, parent_id: str, started: float, prepare_seconds: float) -> None:
    """How long the sweep start took, and how much of it went to preparing the data
    (``mnv1-bench sweep`` reads them back)."""
    runs.log_metrics(
        uri,
        parent_id,
        {
            METRIC_SWEEP_START: time.perf_counter() - started,
            METRIC_PREPARE: prepare_seconds,
        },
    )


@dataclass(frozen=True)
class SweepOutcome:
    states: dict[str, runs.CellState]  # by run key
    matrix: str
    runs_url: str = ""  # the sweep's runs table in the MLflow UI
    report: str = ""  # where the report went, or how to retry it

    @property
    def failed(self) -> list[str]:
        """Run keys of cells that did not end FINISHED."""
        return [k for k, s in self.states.items() if s.status != runs.FINISHED]


def _cell_text(seeds: Sequence[runs.CellState]) -> str:
    """One matrix cell: status, val_top1 and minutes of its run, or of its seeds' runs
    (finished count, mean ± sd of val_top1 over the finished ones, total minutes)."""
    if len(seeds) == 1:
        state = seeds[0]
        top1 = "—" if state.val_top1 is None else f"{100 * state.val_top1:.1f}%"
        minutes = "—" if state.minutes is None else f"{state.minutes:.1f} min"
        return f"{state.status} · {top1} · {minutes}"
    done = [s for s in seeds if s.status == runs.FINISHED]
    values = [100 * s.val_top1 for s in done if s.val_top1 is not None]
    if len(values) >= 2:
        top1 = f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}%"
    else:
        top1 = "—" if not values else f"{values[0]:.1f}%"
    spent = [s.minutes for s in seeds if s.minutes is not None]
    minutes = "—" if not spent else f"{sum(spent):.1f} min"
    return f"{len(done)}/{len(seeds)} seeds {runs.FINISHED} · {top1} · {minutes}"


def status_matrix(cells: Sequence[RunConfig], states: dict[str, runs.CellState]) -> str:
    """The α × ρ matrix (rows α, and the variant where a grid has several; columns ρ) of each
    cell's status, val_top1 and minutes, as Markdown; a cell with several seeds shows them
    together (see ``_cell_text``)."""
    by_coord: dict[tuple[str, float], dict[int, list[runs.CellState]]] = {}
    variants = {c.model.variant for c in cells}
    for cfg in cells:
        row = (cfg.model.variant, cfg.model.alpha)
        column = by_coord.setdefault(row, {}).setdefault(cfg.model.resolution, [])
        column.append(states[run_key(cfg)])
    resolutions = sorted({c.model.resolution for c in cells}, reverse=True)
    header = ["α \\ ρ"] + [str(r) for r in resolutions]
    rows = []
    for variant, alpha in sorted(by_coord, key=lambda va: (va[0], -va[1])):
        label = f"{alpha:g}" if len(variants) == 1 else f"{alpha:g} {variant}"
        row_cells = by_coord[(variant, alpha)]
        rows.append(
            [label, *(_cell_text(row_cells[r]) if r in row_cells else "" for r in resolutions)]
        )
    return tables.markdown(header, rows) + "\n"


def finish_sweep(sweep: SweepRef, cells: Sequence[RunConfig]) -> SweepOutcome:
    """Build, print and log the status matrix, then end the parent: FINISHED when every cell
    finished, FAILED otherwise."""
    started = time.perf_counter()
    states = runs.cell_states(sweep.uri, sweep.experiment_id, [run_key(c) for c in cells])
    matrix = status_matrix(cells, states)
    failed = [k for k, s in states.items() if s.status != runs.FINISHED]
    finished = len(states) - len(failed)
    runs.log_text(sweep.uri, sweep.parent_run_id, MATRIX_ARTIFACT, matrix)
    url = ui.publish_sweep_view(
        sweep.uri,
        sweep.experiment_id,
        sweep.sweep_key,
        cells[0].study,
        sweep.parent_run_id,
        [s.run_id for s in states.values() if s.run_id is not None],
    )
    runs.set_tags(sweep.uri, sweep.parent_run_id, {TAG_CELLS_FINISHED: f"{finished}/{len(states)}"})
    runs.finish(sweep.uri, sweep.parent_run_id, runs.FINISHED if not failed else runs.FAILED)
    report_seconds = 0.0
    report = "Report: not built (tracking.report=false)"
    if cells[0].tracking.report:
        interrupt.phase("report")
        reporting = time.perf_counter()
        report = write_report(sweep, cells[0])
        report_seconds = time.perf_counter() - reporting
    # Logged onto the ended parent (MLflow refuses writes to deleted runs only).
    runs.log_metrics(
        sweep.uri,
        sweep.parent_run_id,
        {METRIC_SWEEP_FINISH: time.perf_counter() - started, METRIC_REPORT: report_seconds},
    )
    return SweepOutcome(states, matrix, url, report)


def runs_hint(uri: str) -> str:
    """How to open the runs URL: a server serves its own UI, a local store needs ``mnv1-ui``."""
    return (
        "open it" if is_http(uri) else "serve the store with `make ui` or `mnv1-ui`, then open it"
    )


def write_report(sweep: SweepRef, first: RunConfig) -> str:
    """Rebuild the paper's tables and figures from this sweep's runs (also logged on its parent).

    The cells' results are already safe in the store, so a report that fails is reported and
    left for ``mnv1-report`` to retry; it never turns a finished sweep into a failed one. Returns
    the line to print: where the report is, or how to retry it.
    """
    from mnv1.report.build import build_report  # matplotlib and Keras: only once a sweep ends

    out_dir = first.tracking.report_dir or f"reports/{first.tracking.experiment}"
    try:
        result = build_report(
            first.tracking.experiment, out_dir, sweep=sweep.parent_run_id, uri=sweep.uri
        )
    except Exception:
        log.exception("the report of sweep %s could not be built", sweep.sweep_key)
        return (
            f"Report: FAILED (see the log); retry with `mnv1-report --experiment "
            f"{first.tracking.experiment} --sweep {sweep.parent_run_id} --out {out_dir}`"
        )
    return f"Report: {result.out_dir / 'report.md'} (also on parent run {sweep.parent_run_id})"


def abort_sweep(sweep: SweepRef, status: str) -> None:
    """End the parent of a sweep that stopped before its end (an error, Ctrl-C)."""
    runs.finish(sweep.uri, sweep.parent_run_id, status)
