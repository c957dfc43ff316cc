"""Read back where this host's finished cells spent their time, for the plan of the next sweep.

Every finished cell run carries its worker's phase timings (``time_<phase>_s``), its
orchestrator's ``time_cell_s`` and ``time_worker_wall_s``, its config as params, and the host
that ran it (tag ``mnv1.host``). ``finished_cells`` returns those runs as plain data, newest
first, from every experiment of a store; only first attempts that trained from scratch count
(a resumed run's timings describe the part its last process trained, not a cell). Nothing is
created: a SQLite store that does not exist yet, or a tracking server that cannot be reached,
has no finished cells.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import schema
from .uri import is_http, resolve_uri

# Runs read at most: the newest finished cells of the host are what the plan learns from.
LIMIT = 1000
_FIRST_ATTEMPT = "1"  # mnv1.tracking.runs.TAG_ATTEMPT of a run never resumed nor rerun


@dataclass(frozen=True)
class FinishedCell:
    """One FINISHED cell run of a host, as the plan learns from it."""

    run_id: str
    name: str
    end_time: int
    """Milliseconds since the epoch, as MLflow records it."""
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


def _store_exists(uri: str) -> bool:
    from .store import TrackingUnreachableError, check_reachable, sqlite_path

    db = sqlite_path(uri)
    if db is not None:
        return db.exists()
    if is_http(uri):
        try:
            check_reachable(uri)  # one short attempt: MLflow's client retries for minutes
        except TrackingUnreachableError:
            return False
    return True


def finished_cells(host: str, uri: str | None = None, limit: int = LIMIT) -> list[FinishedCell]:
    """FINISHED first-attempt cell runs whose orchestrator ran on ``host``, newest first."""
    from mlflow.entities import ViewType

    from .runs import TAG_ATTEMPT
    from .store import client

    resolved = resolve_uri(uri)
    if not _store_exists(resolved):
        return []
    c = client(resolved)
    experiments = [e.experiment_id for e in c.search_experiments(view_type=ViewType.ACTIVE_ONLY)]
    if not experiments:
        return []
    where = " and ".join(
        [
            f"tags.`{schema.TAG_KIND}` = '{schema.KIND_CELL}'",
            f"tags.`{schema.TAG_HOST}` = '{host.replace(chr(39), '')}'",
            f"tags.`{TAG_ATTEMPT}` = '{_FIRST_ATTEMPT}'",
            "attributes.status = 'FINISHED'",
        ]
    )
    found = c.search_runs(
        experiments,
        filter_string=where,
        run_view_type=ViewType.ACTIVE_ONLY,
        max_results=limit,
        order_by=["attributes.end_time DESC"],
    )
    return [
        FinishedCell(
            run_id=r.info.run_id,
            name=r.info.run_name or "",
            end_time=int(r.info.end_time or 0),
            params=dict(r.data.params),
            metrics=dict(r.data.metrics),
            tags=dict(r.data.tags),
        )
        for r in found
        if r.data.tags.get(schema.TAG_RESUMED_FROM_EPOCH, "0") == "0"
    ]
