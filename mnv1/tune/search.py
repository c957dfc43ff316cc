"""One cell's search: its MLflow parent run, the tuner, and what it found.

``open_search`` finds the search's parent run (or creates it); ``run_local`` runs the trials in
this process's tuner; ``finish_search`` reads the trials back from MLflow, attaches
``trials.csv`` and ``trials.png`` to the parent, records the best trial, and ends the parent. The
distributed launcher (``mnv1.tune.distributed``) uses the same open and finish around its chief
and workers.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import filelock

from mnv1 import interrupt
from mnv1.config import RunConfig, TuneConfig
from mnv1.run_key import run_key
from mnv1.sweep.orchestrate import Launch
from mnv1.tracking import runs, schema
from mnv1.tracking import tune as tracking
from mnv1.tracking.store import ensure_experiment, resolve_uri
from mnv1.tune.project import Project, project_for
from mnv1.tune.space import Space
from mnv1.tune.summary import (
    TrialRow,
    best_row,
    failures_at_end,
    trial_rows,
    trials_csv,
    trials_figure,
)
from mnv1.tuned import TunedCell


class SearchBusyError(RuntimeError):
    """The same search is already running in a live process."""


class SearchInterrupted(RuntimeError):
    """A trial's process was killed: the search stopped; a relaunch resumes that trial."""


@dataclass(frozen=True)
class SearchRef:
    project: Project
    uri: str
    experiment_id: str
    parent_run_id: str


@dataclass(frozen=True)
class SearchOutcome:
    cell: str
    parent_run_id: str
    rows: list[TrialRow]
    best: TunedCell | None
    stopped_by_failures: bool
    ran: bool
    """False when the search was already complete and nothing was run or reopened."""

    @property
    def ok(self) -> bool:
        return self.best is not None and not self.stopped_by_failures


def open_search(cell: RunConfig, tune: TuneConfig, space: Space, *, reopen: bool) -> SearchRef:
    """The search's parent run: found by its key (reopened under this process when ``reopen``),
    or created with ``search_space.json``."""
    project = project_for(cell, tune, space)
    uri = resolve_uri(cell.tracking.uri)
    experiment_id = ensure_experiment(uri, project.experiment)
    parent = runs.newest(uri, experiment_id, schema.KIND_TUNE, {schema.TAG_TUNE_KEY: project.key})
    owner = runs.Owner.current()
    if parent is None:
        tags = {
            schema.TAG_TUNE_KEY: project.key,
            schema.TAG_CELL: project.cell,
            schema.TAG_STUDY: cell.study,
            schema.TAG_RUN_KEY: run_key(cell),
            **owner.tags(),
        }
        document = {
            "space": space.as_json(),
            "space_source": space.source,
            "oracle": tune.oracle,
            "seed": tune.seed,
            "objective": {"name": "val_top1", "direction": "max"},
            "holdout_percent": tune.holdout_percent,
            "project": str(project.path),
        }
        parent_id = tracking.create_search(
            uri, experiment_id, f"{project.cell}_tune", tags, document
        )
        print(f"{project.cell}: new search {project.key}, parent run {parent_id}", flush=True)
        return SearchRef(project, uri, experiment_id, parent_id)
    if reopen:
        if parent.status == runs.RUNNING and runs.owner_alive(parent.tags):
            raise SearchBusyError(
                f"search {project.key} is already running (parent run {parent.run_id}, pid "
                f"{parent.tags.get(schema.TAG_PID)})"
            )
        runs.reopen(uri, parent, owner, counter=runs.TAG_LAUNCHES)
        print(f"{project.cell}: continuing search {project.key}, parent run {parent.run_id}")
    return SearchRef(project, uri, experiment_id, parent.run_id)


def finish_search(ref: SearchRef, space: Space, tune: TuneConfig, status: str) -> SearchOutcome:
    """Summarise the trials onto the parent and end it (FAILED when the search stopped on
    failures or found nothing, ``status`` otherwise)."""
    rows = trial_rows(ref.uri, ref.experiment_id, ref.project.key)
    best = best_row(rows)
    stopped = failures_at_end(rows) >= tune.max_consecutive_failed_trials
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / tracking.TRIALS_CSV_ARTIFACT
        csv_path.write_text(trials_csv(rows, space), encoding="utf-8")
        tracking.log_file(ref.uri, ref.parent_run_id, csv_path)
        if rows:
            figure = trials_figure(rows, space, Path(tmp) / tracking.TRIALS_FIGURE_ARTIFACT)
            tracking.log_file(ref.uri, ref.parent_run_id, figure)
    tuned = _tuned(best, space, ref.parent_run_id)
    if tuned is not None:
        tracking.log_best(ref.uri, ref.parent_run_id, tuned.trial_id, tuned.run_id, tuned.val_top1)
    if status == runs.FINISHED and (stopped or best is None):
        status = runs.FAILED
    runs.finish(ref.uri, ref.parent_run_id, status)
    return SearchOutcome(ref.project.cell, ref.parent_run_id, rows, tuned, stopped, ran=True)


def project_lock(project: Project) -> filelock.FileLock:
    """Held by the process that drives a search (local tuner or launcher) while it runs."""
    project.path.mkdir(parents=True, exist_ok=True)
    return filelock.FileLock(str(project.path / ".mnv1-search.lock"))


def hold_search(project: Project) -> filelock.FileLock:
    """Take the search's lock at once or raise SearchBusyError: two drivers of one search would
    run its trials twice. The caller releases the returned lock."""
    lock = project_lock(project)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout as exc:
        raise SearchBusyError(f"search {project.key} is already running elsewhere") from exc
    return lock


def run_local(
    cell: RunConfig, tune: TuneConfig, space: Space, launch: Launch | None = None
) -> SearchOutcome:
    """Search one cell with the trials run one after another by this process's tuner.

    A relaunch continues: finished trials are kept, the trial that was running is handed out
    again and resumes its own run. A search with nothing left to run creates and reopens no run.
    ``launch`` replaces the worker process (tests); see ``mnv1.sweep.orchestrate.Launch``.
    """
    from mnv1.tune.trial import TrialRunner
    from mnv1.tune.tuner import CellTuner, TrialKilled, make_oracle

    project = project_for(cell, tune, space)
    lock = hold_search(project)
    try:
        uri = resolve_uri(cell.tracking.uri)
        interrupt.phase("store")
        experiment_id = ensure_experiment(uri, project.experiment)
        runner = TrialRunner(cell, tune, project, uri, experiment_id, launch=launch)
        tuner = CellTuner(make_oracle(tune, space), project, runner)
        parent = runs.newest(
            uri, experiment_id, schema.KIND_TUNE, {schema.TAG_TUNE_KEY: project.key}
        )
        if tuner.finished() and parent is not None:
            rows = trial_rows(uri, experiment_id, project.key)
            best = best_row(rows)
            print(f"{project.cell}: search {project.key} is complete; nothing to run", flush=True)
            outcome = finish_readonly(rows, best, space, tune, parent.run_id, project.cell)
            return outcome
        ref = open_search(cell, tune, space, reopen=True)
        runner.parent_run_id = ref.parent_run_id
        try:
            tuner.search()
        except TrialKilled as exc:
            finish_search(ref, space, tune, runs.KILLED)
            raise SearchInterrupted(str(exc)) from exc
        except BaseException:
            finish_search(ref, space, tune, runs.KILLED)
            raise
        return finish_search(ref, space, tune, runs.FINISHED)
    finally:
        lock.release()


def finish_readonly(
    rows: list[TrialRow],
    best: TrialRow | None,
    space: Space,
    tune: TuneConfig,
    parent_run_id: str,
    cell: str,
) -> SearchOutcome:
    """The outcome of a complete search, read without touching its runs."""
    tuned = _tuned(best, space, parent_run_id)
    stopped = failures_at_end(rows) >= tune.max_consecutive_failed_trials
    return SearchOutcome(cell, parent_run_id, rows, tuned, stopped, ran=False)


def _tuned(best: TrialRow | None, space: Space, parent_run_id: str) -> TunedCell | None:
    """The tuned file's entry for a search whose best trial is ``best``."""
    if best is None or best.val_top1 is None:
        return None
    return TunedCell(
        overrides={k: best.values[k] for k in space.keys if k in best.values},
        val_top1=best.val_top1,
        trial_id=best.trial_id,
        run_id=best.run_id,
        search_run_id=parent_run_id,
    )
