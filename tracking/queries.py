"""Read a sweep back out of MLflow as plain dataclasses.

The report and the status view only ever see the dataclasses below, so nothing outside
``tracking/`` needs MLflow's entity classes. ``mlflow`` is imported inside the functions that talk
to the store: importing this module for its types stays cheap.

What is read (names in :mod:`mnv1.tracking.schema`):

* the sweep's **parent run** (tag ``mnv1.kind=sweep``) and its ``grid.json`` artifact, the list of
  cells the sweep was asked to run;
* the **cell runs** that belong to it: its children (tag ``mlflow.parentRunId``) and every other
  cell run of the experiment whose ``mnv1.run_key`` is in the grid and that had FINISHED before
  the sweep ended. The second kind matters because a relaunched sweep skips a cell that an
  earlier sweep already finished: that cell's run is a child of the earlier parent, and the new
  sweep's report must still find it. The time limit keeps an old sweep's report as it was: a
  later rerun of one of its cells does not rewrite it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import schema
from .uri import connect_uri, resolve_uri

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

GRID_ARTIFACT = "grid.json"
TAG_PARENT_RUN_ID = "mlflow.parentRunId"  # MLflow's own tag for nested runs
# Run statuses as MLflow stores them; SCHEDULED is counted as running.
ACTIVE_STATUSES = ("RUNNING", "SCHEDULED")
# The store is searched page by page: MLflow caps one search at this many runs.
_PAGE = 1000


@dataclass(frozen=True)
class GridCell:
    """One cell a sweep was asked to run, as listed in the parent's ``grid.json``."""

    name: str
    alpha: float
    resolution: int
    variant: str = "separable"
    run_key: str | None = None
    seed: int | None = None
    """``train.seed`` of this entry: a cell swept over seeds has one entry per seed, all with the
    cell's name (None in a ``grid.json`` written before seeds were recorded)."""


@dataclass(frozen=True)
class SweepParent:
    """The parent run of one sweep."""

    run_id: str
    experiment_id: str
    sweep_key: str
    study: str
    status: str
    start_time: int
    end_time: int | None
    """None while the sweep runs."""
    grid: tuple[GridCell, ...] | None
    """None when the parent has no ``grid.json`` (the cells are then what its children say)."""
    tags: dict[str, str] = field(default_factory=dict)
    """The parent's tags (the dataset's fingerprint among them)."""


@dataclass(frozen=True)
class CellRun:
    """One child (cell) run: its identity, status and final metrics."""

    run_id: str
    run_name: str
    status: str
    start_time: int
    end_time: int | None
    parent_run_id: str | None
    run_key: str | None
    sweep_key: str | None
    variant: str
    metrics: dict[str, float] = field(default_factory=dict)
    """The latest value of every metric (for per-epoch metrics: the last epoch logged)."""
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def alpha(self) -> float | None:
        return self.metrics.get(schema.METRIC_ALPHA)

    @property
    def resolution(self) -> int | None:
        value = self.metrics.get(schema.METRIC_RESOLUTION)
        return None if value is None else round(value)

    @property
    def cell(self) -> str | None:
        """The cell this run answers (tag ``mnv1.cell``; None on runs written before it)."""
        return self.tags.get(schema.TAG_CELL)

    @property
    def seed(self) -> int | None:
        value = self.tags.get(schema.TAG_SEED)
        return int(value) if value is not None and value.lstrip("-").isdigit() else None


@dataclass(frozen=True)
class SweepRuns:
    """Everything the report needs about one sweep."""

    experiment: str
    tracking_uri: str
    parent: SweepParent
    runs: tuple[CellRun, ...]


def _client(uri: str | None) -> MlflowClient:
    from mlflow import MlflowClient

    from .store import check_store, sqlite_path

    resolved = resolve_uri(uri)
    db = sqlite_path(resolved)
    if db is not None and not db.exists():
        # MLflow would create it, in place: a reader never creates a store.
        raise ValueError(f"there is no tracking store at {db} yet; a sweep creates it")
    check_store(resolved)
    return MlflowClient(tracking_uri=connect_uri(resolved))


def _experiment_id(client: MlflowClient, experiment: str, uri: str) -> str:
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ValueError(
            f"experiment={experiment!r} is not in the tracking store {uri}; "
            f"experiments there: {names or 'none'}"
        )
    return str(found.experiment_id)


def _search(client: MlflowClient, experiment_id: str, filter_string: str) -> Iterator[Run]:
    token: str | None = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=filter_string,
            max_results=_PAGE,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        yield from page
        token = page.token
        if not token:
            return


def _quote(value: str) -> str:
    # MLflow's filter grammar has no escape for a quote inside a string literal.
    if "'" in value:
        raise ValueError(f"a tag value used in a search may not contain a quote, got {value!r}")
    return f"'{value}'"


def _parse_grid(text: str, run_id: str) -> tuple[GridCell, ...]:
    try:
        data: Any = json.loads(text)
        cells = data["cells"]
        return tuple(
            GridCell(
                name=str(c["name"]),
                alpha=float(c["alpha"]),
                resolution=int(c["resolution"]),
                variant=str(c.get("variant", "separable")),
                run_key=None if c.get("run_key") is None else str(c["run_key"]),
                seed=None if c.get("seed") is None else int(c["seed"]),
            )
            for c in cells
        )
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{GRID_ARTIFACT} of parent run {run_id} is not "
            '{"cells": [{"name", "alpha", "resolution", "variant", "run_key"}, ...]}: '
            f"{err!r}"
        ) from err


def _read_grid(client: MlflowClient, uri: str, run_id: str) -> tuple[GridCell, ...] | None:
    names = {Path(f.path).name for f in client.list_artifacts(run_id) if not f.is_dir}
    if GRID_ARTIFACT not in names:
        return None
    from mlflow.artifacts import download_artifacts

    with tempfile.TemporaryDirectory() as tmp:
        local = download_artifacts(
            run_id=run_id,
            artifact_path=GRID_ARTIFACT,
            dst_path=tmp,
            tracking_uri=connect_uri(uri),
        )
        return _parse_grid(Path(local).read_text(), run_id)


def _parent(client: MlflowClient, uri: str, run: Run) -> SweepParent:
    tags = run.data.tags
    return SweepParent(
        run_id=run.info.run_id,
        experiment_id=str(run.info.experiment_id),
        sweep_key=tags.get(schema.TAG_SWEEP, ""),
        study=tags.get(schema.TAG_STUDY, ""),
        status=run.info.status,
        start_time=int(run.info.start_time or 0),
        end_time=None if run.info.end_time is None else int(run.info.end_time),
        grid=_read_grid(client, uri, run.info.run_id),
        tags=dict(tags),
    )


def _cell(run: Run) -> CellRun:
    tags = run.data.tags
    return CellRun(
        run_id=run.info.run_id,
        run_name=run.info.run_name or "",
        status=run.info.status,
        start_time=int(run.info.start_time or 0),
        end_time=None if run.info.end_time is None else int(run.info.end_time),
        parent_run_id=tags.get(TAG_PARENT_RUN_ID),
        run_key=tags.get(schema.TAG_RUN_KEY),
        sweep_key=tags.get(schema.TAG_SWEEP),
        variant=tags.get(schema.TAG_VARIANT, "separable"),
        metrics={k: float(v) for k, v in run.data.metrics.items()},
        tags=dict(tags),
    )


def find_parent(experiment: str, sweep: str | None = None, uri: str | None = None) -> SweepParent:
    """The parent run of ``sweep`` (a sweep key or a parent run id, or a unique prefix of one),
    or of the latest sweep.

    Raises ValueError naming the experiment and the sweeps it holds when none matches.
    """
    tracking_uri = resolve_uri(uri)
    client = _client(tracking_uri)
    experiment_id = _experiment_id(client, experiment, tracking_uri)
    kind = f"tags.`{schema.TAG_KIND}` = {_quote(schema.KIND_SWEEP)}"
    parents = list(_search(client, experiment_id, kind))
    if sweep is None:
        if not parents:
            raise ValueError(
                f"experiment={experiment!r} has no sweep parent run "
                f"(tag {schema.TAG_KIND}={schema.KIND_SWEEP}) in {tracking_uri}"
            )
        return _parent(client, tracking_uri, parents[0])  # newest first

    def ids(run: Run) -> tuple[str, str]:
        return run.info.run_id, run.data.tags.get(schema.TAG_SWEEP, "")

    # Newest first: a sweep relaunched with tracking.rerun=true has a second parent with the same
    # key, and its key names the newest.
    exact = [run for run in parents if sweep in ids(run)]
    if exact:
        return _parent(client, tracking_uri, exact[0])
    # A unique prefix will do too: run names carry the first 8 characters of the sweep key.
    matches = [run for run in parents if any(i.startswith(sweep) for i in ids(run))]
    if len({run.data.tags.get(schema.TAG_SWEEP) or run.info.run_id for run in matches}) == 1:
        return _parent(client, tracking_uri, matches[0])
    known = [f"{r.data.tags.get(schema.TAG_SWEEP, '?')} ({r.info.run_id})" for r in parents]
    problem = "is a prefix of several sweeps" if matches else "matches no sweep key or run id"
    raise ValueError(
        f"sweep={sweep!r} {problem} of experiment={experiment!r}; sweeps there: {known or 'none'}"
    )


def _reusable(run: Run, parent: SweepParent) -> bool:
    """Whether another sweep's run could have been skipped into this one: finished in time."""
    if run.info.status != "FINISHED":
        return False
    # A relaunch reopens the parent (RUNNING again) and keeps its old end time: ignore that.
    if parent.status in ACTIVE_STATUSES or parent.end_time is None:
        return True
    return (run.info.end_time or 0) <= parent.end_time


def read_sweep(experiment: str, sweep: str | None = None, uri: str | None = None) -> SweepRuns:
    """The parent of one sweep (default: the latest) and every cell run that belongs to it."""
    tracking_uri = resolve_uri(uri)
    parent = find_parent(experiment, sweep, tracking_uri)
    client = _client(tracking_uri)
    children = f"tags.`{TAG_PARENT_RUN_ID}` = {_quote(parent.run_id)}"
    cells = f"tags.`{schema.TAG_KIND}` = {_quote(schema.KIND_CELL)}"
    wanted_keys = {c.run_key for c in parent.grid or () if c.run_key}
    found: dict[str, CellRun] = {}
    for run in _search(client, parent.experiment_id, children):
        found[run.info.run_id] = _cell(run)
    for run in _search(client, parent.experiment_id, cells):
        if run.data.tags.get(schema.TAG_RUN_KEY) in wanted_keys and _reusable(run, parent):
            found.setdefault(run.info.run_id, _cell(run))
    runs = sorted(found.values(), key=lambda r: r.start_time, reverse=True)
    return SweepRuns(
        experiment=experiment, tracking_uri=tracking_uri, parent=parent, runs=tuple(runs)
    )


@dataclass(frozen=True)
class SweepMetrics:
    """The latest value of every metric of one sweep's parent run and of each of its cells."""

    parent_run_id: str
    parent: dict[str, float]
    cells: dict[str, dict[str, float]]
    """By cell run name."""
    statuses: dict[str, str]
    """Each cell run's status, by run name."""


def sweep_metrics(
    experiment: str, sweep: str | None = None, uri: str | None = None
) -> SweepMetrics:
    """The metrics of one sweep (default: the latest), its parent's and each cell's.

    A cell that ran more than once (a resumed run) appears once: its newest run.
    """
    found = read_sweep(experiment, sweep, uri)
    parent = _client(found.tracking_uri).get_run(found.parent.run_id)
    cells: dict[str, dict[str, float]] = {}
    statuses: dict[str, str] = {}
    for run in found.runs:  # newest first
        if run.run_name not in cells:
            cells[run.run_name] = dict(run.metrics)
            statuses[run.run_name] = run.status
    return SweepMetrics(
        parent_run_id=found.parent.run_id,
        parent={k: float(v) for k, v in parent.data.metrics.items()},
        cells=cells,
        statuses=statuses,
    )
