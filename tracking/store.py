"""The MLflow store: where it is, one client per URI, and writes that survive a busy SQLite file.

The default store is a SQLite file (``sqlite:///mlflow.db``, relative to the working directory
of the launch). SQLite is fine for one host and a few parallel cells: MLflow waits up to 20 s on a
busy database, and every call here retries ``database is locked`` with backoff on top of that, so
parallel cells lose nothing. It stops being the right store when cells run on several hosts
(SQLite over NFS is not safe) or when dozens of cells write at once (writers queue behind one
lock): then run a tracking server, ``mlflow server --backend-store-uri postgresql://...
--artifacts-destination s3://...`` (``pip install 'mnv1[postgres]'``), and set
``MLFLOW_TRACKING_URI=http://host:5000``.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mnv1 import interrupt

from . import sqlite_store
from .uri import connect_uri, is_http, redact, resolve_uri

log = logging.getLogger(__name__)

T = TypeVar("T")

# Total time a call keeps retrying a locked database before giving up. A cell's writes are
# small; waiting this long means another process holds the lock for minutes, which is a bug.
RETRY_SECONDS = 180.0
_LOCK_MARKERS = ("database is locked", "database table is locked", "database schema has changed")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:`` URI, None for other stores."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(uri[len("sqlite:///") :])


def is_locked_error(exc: BaseException) -> bool:
    """True for SQLite's transient lock errors, wherever MLflow or SQLAlchemy wrapped them."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(marker in str(current) for marker in _LOCK_MARKERS):
            return True
        current = current.__cause__ or current.__context__
    return False


def retry_locked(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call ``fn``, retrying with jittered exponential backoff while the database is locked."""
    deadline = time.monotonic() + RETRY_SECONDS
    delay = 0.05
    while True:
        try:
            # One call to the store is whole: an interrupt waits for its end (mnv1.interrupt).
            with interrupt.held():
                return fn(*args, **kwargs)
        except Exception as exc:
            if not is_locked_error(exc) or time.monotonic() + delay > deadline:
                raise
            log.debug("tracking store busy (%s); retrying in %.2f s", exc, delay)
            # Jitter keeps two cells that collided once from colliding again in lockstep.
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)


class RetryingClient:
    """An MlflowClient whose every method retries on a locked SQLite database."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        check_store(uri)
        self._client = MlflowClient(tracking_uri=connect_uri(uri))

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Any:
            return retry_locked(attr, *args, **kwargs)

        return call


@functools.cache
def client(uri: str | None = None) -> RetryingClient:
    """One client per resolved URI and process."""
    return RetryingClient(resolve_uri(uri))


def check_store(uri: str) -> None:
    """Raise ``BrokenStoreError`` for a SQLite store that is not whole (see
    ``mnv1.tracking.sqlite_store``), before MLflow fails on it with a SQL error."""
    db = sqlite_path(uri)
    if db is not None:
        sqlite_store.check(db)


def _artifact_location(uri: str, experiment: str) -> str | None:
    """Artifacts of a SQLite store live beside the database file, not in the launch directory."""
    db = sqlite_path(uri)
    if db is None:
        return None  # a tracking server decides (its --artifacts-destination)
    folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment)
    return (db.parent / "mlartifacts" / folder).as_uri()


def find_experiment(uri: str | None, name: str) -> str | None:
    """The id of experiment ``name``, or None; creates nothing (not even a SQLite file)."""
    resolved = resolve_uri(uri)
    db = sqlite_path(resolved)
    if db is not None and not db.exists():
        return None
    found = client(resolved).get_experiment_by_name(name)
    return None if found is None else str(found.experiment_id)


# The probe of a tracking server before a sweep: one attempt, short timeouts. MLflow's own client
# retries a refused connection for minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES, default 7, with
# exponential backoff), which is right for a blip in the middle of a sweep and wrong for a server
# that is not there at all.
PROBE_CONNECT_SECONDS = 5.0
PROBE_READ_SECONDS = 15.0
_PROBE_ENDPOINT = "/api/2.0/mlflow/experiments/search"


class TrackingUnreachableError(RuntimeError):
    """The tracking server is down, unreachable, or refuses this client."""


def check_reachable(uri: str | None = None) -> None:
    """Fail fast, with what to check, when the tracking server at ``uri`` cannot be used.

    A local store (a SQLite file) needs no check. A server is asked for one experiment, with the
    credentials MLflow will use, so a wrong password fails here too and not in the first cell.
    """
    resolved = resolve_uri(uri)
    if not is_http(resolved):
        try:
            check_store(resolved)
        except sqlite_store.BrokenStoreError as exc:
            raise TrackingUnreachableError(str(exc)) from None
        return
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request

    shown = redact(resolved)
    try:
        response = http_request(
            get_default_host_creds(resolved),
            _PROBE_ENDPOINT,
            "POST",
            max_retries=0,
            backoff_factor=0,
            timeout=(PROBE_CONNECT_SECONDS, PROBE_READ_SECONDS),
            raise_on_status=False,
            json={"max_results": 1},
        )
    except Exception as exc:
        raise TrackingUnreachableError(
            f"the MLflow tracking server at {shown} cannot be reached ({type(exc).__name__}). "
            "Check that `mlflow server` is running there and listening on that host and port, "
            "or point tracking.uri (or MLFLOW_TRACKING_URI) at a running server or at "
            "sqlite:///mlflow.db"
        ) from None
    if response.status_code in (401, 403):
        raise TrackingUnreachableError(
            f"the MLflow tracking server at {shown} refused the credentials (HTTP "
            f"{response.status_code}). Check MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (or the user:password in tracking.uri)"
        )
    if response.status_code != 200:
        raise TrackingUnreachableError(
            f"the MLflow tracking server at {shown} answered HTTP {response.status_code} to "
            f"{_PROBE_ENDPOINT}. Check that the URI names an MLflow tracking server (not another "
            "service on that port) and read that server's log"
        )


EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
# The value MLflow's UI writes itself when a user picks "model training" for an experiment: the
# UI then opens on the runs table instead of its GenAI overview (traces, token usage).
EXPERIMENT_KIND_TRAINING = "custom_model_development"


def ensure_experiment(uri: str | None, name: str) -> str:
    """The id of experiment ``name``, creating it (and a fresh SQLite database) if needed.

    Call this once before cells fan out. A new SQLite store is created complete beside its
    place and then linked there (``mnv1.tracking.sqlite_store``), so neither an interrupt nor a
    second launch doing the same can leave it half-migrated.
    """
    resolved = resolve_uri(uri)
    db = sqlite_path(resolved)
    if db is not None:
        sqlite_store.check(db)
        sqlite_store.create(db)  # whole or not at all, whatever interrupts it
    c = client(resolved)
    found = c.get_experiment_by_name(name)
    if found is None:
        try:
            return str(
                c.create_experiment(
                    name,
                    artifact_location=_artifact_location(resolved, name),
                    tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND_TRAINING},
                )
            )
        except MlflowException as exc:
            # Another process created it between our lookup and our create.
            if "RESOURCE_ALREADY_EXISTS" not in str(exc.error_code) and "already exists" not in str(
                exc
            ):
                raise
            found = c.get_experiment_by_name(name)
            if found is None:
                raise
    if found.lifecycle_stage == "deleted":
        # A deleted experiment still owns its name; bring it back rather than fail.
        c.restore_experiment(found.experiment_id)
    if found.tags.get(EXPERIMENT_KIND_TAG) is None:
        # Created before this tag was set (or by another tool): mark it a training experiment,
        # but never overrule a kind a user chose in the UI.
        c.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND_TRAINING)
    return str(found.experiment_id)
