"""Run lifecycle in MLflow: find runs by key, create and reopen them, end them, and reconcile runs
left RUNNING by processes that no longer exist.

A RUNNING run records the process that owns it (host, pid and that process's start time, so a
recycled pid is not mistaken for the owner). A later launch on the same host that finds the owner
gone marks the run KILLED and may resume it; a run owned by another host cannot be checked from
here and is left alone.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
from mlflow.entities import Metric, Param, RunTag, ViewType
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from . import schema
from .store import client, retry_locked

# Start time of the owning process (seconds since the epoch): with the pid it names a process
# uniquely, since pids are recycled.
TAG_PID_STARTED = "mnv1.pid_started"
TAG_ATTEMPT = "mnv1.attempt"  # 1 for the first launch of a run, +1 for each resume or rerun
TAG_EXIT = "mnv1.exit"  # how the last attempt's process ended: "exit 0", "exit 1", "signal 9"
TAG_RECONCILED = "mnv1.reconciled"  # why a later launch marked this run KILLED
TAG_LAUNCHES = "mnv1.launches"  # on sweep parents: how many times the sweep was launched

RUNNING, FINISHED, FAILED, KILLED = "RUNNING", "FINISHED", "FAILED", "KILLED"
_PAGE = 1000
_PARAM_LIMIT = 6000  # MLflow's limit on a param value, in characters
_BATCH = 100  # MLflow accepts at most 100 params / 1000 metrics per log_batch


@dataclass(frozen=True)
class Owner:
    """The process that runs (or orchestrates) a run."""

    host: str
    pid: int
    started: float

    @classmethod
    def current(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), psutil.Process().create_time())

    def tags(self) -> dict[str, str]:
        return {
            schema.TAG_HOST: self.host,
            schema.TAG_PID: str(self.pid),
            TAG_PID_STARTED: f"{self.started:.3f}",
        }


def owner_alive(tags: Mapping[str, str]) -> bool | None:
    """Whether the process named in a run's owner tags still runs: None when it cannot be told
    from here (another host, or no owner recorded)."""
    host, pid = tags.get(schema.TAG_HOST), tags.get(schema.TAG_PID)
    if host != socket.gethostname() or pid is None or not pid.isdigit():
        return None
    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = tags.get(TAG_PID_STARTED)
        # A different start time means the pid was recycled by an unrelated process.
        return started is None or abs(proc.create_time() - float(started)) < 1.0
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


@dataclass
class RunInfo:
    run_id: str
    name: str
    status: str
    tags: dict[str, str]
    metrics: dict[str, float]
    start_time: int | None  # ms since the epoch
    end_time: int | None

    @property
    def minutes(self) -> float | None:
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time) / 60_000

    @property
    def stale(self) -> bool:
        """RUNNING, but its owner is gone (known only on the owner's own host)."""
        return self.status == RUNNING and owner_alive(self.tags) is False


def _info(run: Any) -> RunInfo:
    return RunInfo(
        run_id=run.info.run_id,
        name=run.info.run_name or "",
        status=run.info.status,
        tags=dict(run.data.tags),
        metrics=dict(run.data.metrics),
        start_time=run.info.start_time,
        end_time=run.info.end_time,
    )


def _quote(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'"


def search(
    uri: str, experiment_id: str, *, tags: Mapping[str, str] = {}, status: str | None = None
) -> list[RunInfo]:
    """Active (not deleted) runs with these tag values, newest first."""
    clauses = [f"tags.`{k}` = {_quote(v)}" for k, v in tags.items()]
    if status is not None:
        clauses.append(f"attributes.status = {_quote(status)}")
    c = client(uri)
    found: list[RunInfo] = []
    token = None
    while True:
        page = c.search_runs(
            [experiment_id],
            filter_string=" and ".join(clauses),
            run_view_type=ViewType.ACTIVE_ONLY,
            max_results=_PAGE,
            order_by=["attributes.start_time DESC"],
            page_token=token,
        )
        found += [_info(r) for r in page]
        token = page.token
        if not token:
            return found


def get(uri: str, run_id: str) -> RunInfo:
    return _info(client(uri).get_run(run_id))


def newest(uri: str, experiment_id: str, kind: str, key: Mapping[str, str]) -> RunInfo | None:
    """The newest active run of ``kind`` (tag ``mnv1.kind``) with the tag values ``key``: how a
    launch finds its cell, sweep, search or trial again, whichever launch created it."""
    found = search(uri, experiment_id, tags={**key, schema.TAG_KIND: kind})
    return found[0] if found else None


def find_cell(uri: str, experiment_id: str, run_key: str) -> RunInfo | None:
    """The newest cell run with this run key in the experiment, whichever sweep started it."""
    return newest(uri, experiment_id, schema.KIND_CELL, {schema.TAG_RUN_KEY: run_key})


def create(
    uri: str,
    experiment_id: str,
    name: str,
    tags: Mapping[str, str],
    *,
    parent_run_id: str | None = None,
) -> str:
    """A new RUNNING run; ``parent_run_id`` nests it under a sweep in the MLflow UI."""
    all_tags = {MLFLOW_RUN_NAME: name, TAG_ATTEMPT: "1", **tags}
    if parent_run_id:
        all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
    run = client(uri).create_run(experiment_id, tags=all_tags, run_name=name)
    return str(run.info.run_id)


def reopen(
    uri: str,
    run: RunInfo,
    owner: Owner,
    *,
    counter: str = TAG_ATTEMPT,
    archive: Iterable[str] = (),
) -> None:
    """Set an ended run RUNNING again under ``owner`` and count the new attempt.

    Artifacts named in ``archive`` (an earlier attempt's traceback) move to ``attempt<N>/``, so a
    run that ends FINISHED does not show a traceback at its top level, and the history stays.
    """
    c = client(uri)
    previous = int(run.tags.get(counter, "1"))
    present = set(artifact_names(uri, run.run_id))
    for name in archive:
        if name in present:
            move_artifact(uri, run.run_id, name, f"attempt{previous}/{name}")
    set_tags(uri, run.run_id, {**owner.tags(), counter: str(previous + 1)})
    c.update_run(run.run_id, status=RUNNING)


def move_artifact(uri: str, run_id: str, name: str, new_name: str) -> None:
    """Move a run's text artifact (MLflow has no rename: copy, then delete the original)."""
    c = client(uri)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(c.download_artifacts(run_id, name, tmp))
        c.log_text(run_id, local.read_text(errors="replace"), new_name)
    repo = get_artifact_repository(c.get_run(run_id).info.artifact_uri)
    retry_locked(repo.delete_artifacts, name)


def finish(uri: str, run_id: str, status: str) -> None:
    client(uri).set_terminated(run_id, status=status)


def mark_killed(uri: str, run: RunInfo, reason: str) -> None:
    set_tags(uri, run.run_id, {TAG_RECONCILED: reason})
    finish(uri, run.run_id, KILLED)


def reconcile_stale(uri: str, experiment_id: str) -> list[RunInfo]:
    """Mark KILLED every RUNNING run of the experiment whose owner on this host is gone.

    Such runs were left by a process killed outright (SIGKILL, power loss, a closed terminal);
    without this they would show RUNNING forever.
    """
    stale = [r for r in search(uri, experiment_id, status=RUNNING) if r.stale]
    for run in stale:
        owner = f"pid {run.tags.get(schema.TAG_PID)} on {run.tags.get(schema.TAG_HOST)}"
        mark_killed(uri, run, f"owner {owner} was gone at {time.strftime('%Y-%m-%d %H:%M:%S')}")
    return stale


def mark_orphans(uri: str, experiment_id: str, tag: str, value: str, reason: str) -> list[RunInfo]:
    """Mark KILLED every RUNNING run tagged ``tag=value`` (the runs of a cluster job that its
    scheduler reports dead: their owner ran on another host, where ``owner_alive`` cannot look)."""
    orphans = search(uri, experiment_id, tags={tag: value}, status=RUNNING)
    for run in orphans:
        mark_killed(uri, run, reason)
    return orphans


def set_tags(uri: str, run_id: str, tags: Mapping[str, Any]) -> None:
    if tags:
        client(uri).log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def log_params(uri: str, run_id: str, params: Mapping[str, Any]) -> None:
    items = [Param(k, str(v)[:_PARAM_LIMIT]) for k, v in params.items()]
    for i in range(0, len(items), _BATCH):
        client(uri).log_batch(run_id, params=items[i : i + _BATCH])


def log_metrics(uri: str, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, step) for k, v in metrics.items()]
    for i in range(0, len(items), 1000):
        client(uri).log_batch(run_id, metrics=items[i : i + 1000])


def log_text(uri: str, run_id: str, name: str, text: str) -> None:
    client(uri).log_text(run_id, text, name)


def log_json(uri: str, run_id: str, name: str, data: Any) -> None:
    log_text(uri, run_id, name, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def artifact_names(uri: str, run_id: str, path: str | None = None) -> list[str]:
    return [a.path for a in client(uri).list_artifacts(run_id, path)]


@dataclass
class CellState:
    """What the status matrix shows for one cell."""

    run_key: str
    status: str = "MISSING"
    val_top1: float | None = None
    minutes: float | None = None
    run_id: str | None = None


def cell_states(uri: str, experiment_id: str, run_keys: Iterable[str]) -> dict[str, CellState]:
    """The newest run of each key (MISSING where none), for the sweep's final status matrix."""
    keys = list(dict.fromkeys(run_keys))
    wanted = set(keys)
    newest: dict[str, RunInfo] = {}
    for found in search(uri, experiment_id, tags={schema.TAG_KIND: schema.KIND_CELL}):
        key = found.tags.get(schema.TAG_RUN_KEY, "")
        if key in wanted and key not in newest:
            newest[key] = found  # search lists the newest first
    states = {}
    for key in keys:
        run = newest.get(key)
        states[key] = (
            CellState(key)
            if run is None
            else CellState(
                run_key=key,
                status=run.status,
                val_top1=run.metrics.get(schema.METRIC_VAL_TOP1),
                minutes=run.minutes,
                run_id=run.run_id,
            )
        )
    return states
