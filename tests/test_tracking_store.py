"""The tracking store: URI resolution, experiment creation, writes that survive a busy SQLite."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mnv1.tracking import queries, store
from mnv1.tracking.store import ensure_experiment, is_locked_error, resolve_uri, retry_locked


def test_uri_resolution_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert resolve_uri(None) == f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking:5000")
    assert resolve_uri(None) == "http://tracking:5000"
    assert resolve_uri("sqlite:///runs/x.db") == f"sqlite:///{tmp_path}/runs/x.db"
    assert resolve_uri("sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert resolve_uri("postgresql://u@db/mlflow") == "postgresql://u@db/mlflow"


def test_queries_read_the_file_the_store_writes_from_any_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """One rule for both: a relative SQLite path means the same file to writers and readers."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    ensure_experiment("sqlite:///runs/mlflow.db", "smoke")
    absolute = f"sqlite:///{tmp_path}/runs/mlflow.db"
    with pytest.raises(ValueError, match=f"has no sweep parent run .* in {absolute}$"):
        queries.find_parent("smoke", uri="sqlite:///runs/mlflow.db")


def test_ensure_experiment_creates_once_beside_the_database(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/store/mlflow.db"
    first = ensure_experiment(uri, "smoke")
    assert (tmp_path / "store" / "mlflow.db").is_file()
    assert ensure_experiment(uri, "smoke") == first
    experiment = MlflowClient(uri).get_experiment(first)
    assert experiment.artifact_location == (tmp_path / "store" / "mlartifacts" / "smoke").as_uri()
    # A deleted experiment still holds its name: it is restored, not recreated.
    MlflowClient(uri).delete_experiment(first)
    assert ensure_experiment(uri, "smoke") == first
    assert MlflowClient(uri).get_experiment(first).lifecycle_stage == "active"


def test_lock_errors_are_recognised_through_wrapping() -> None:
    try:
        try:
            raise sqlite3.OperationalError("database is locked")
        except sqlite3.OperationalError as inner:
            raise MlflowException("(sqlite3.OperationalError) something went wrong") from inner
    except MlflowException as outer:
        assert is_locked_error(outer)
    assert not is_locked_error(MlflowException("RESOURCE_DOES_NOT_EXIST"))


def test_retry_locked_retries_only_lock_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store.time, "sleep", lambda _s: None)
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "written"

    assert retry_locked(flaky) == "written"
    assert len(calls) == 3

    def broken() -> None:
        raise ValueError("not a lock problem")

    with pytest.raises(ValueError, match="not a lock problem"):
        retry_locked(broken)

    monkeypatch.setattr(store, "RETRY_SECONDS", 0.0)

    def always_locked() -> None:
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(sqlite3.OperationalError):
        retry_locked(always_locked)


def _write_many(uri: str, run_id: str, worker: int) -> None:
    from mlflow.entities import Metric
    from mnv1.tracking.store import client

    c = client(uri)
    for step in range(40):
        c.log_batch(run_id, metrics=[Metric(f"m{worker}", float(step), 0, step)])
        c.set_tag(run_id, f"w{worker}.s{step}", "x")


def test_parallel_writers_on_one_sqlite_lose_nothing(sqlite_uri: str) -> None:
    uri = sqlite_uri
    experiment = ensure_experiment(uri, "parallel")
    run_id = MlflowClient(uri).create_run(experiment).info.run_id
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(uri, run_id, w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    c = MlflowClient(uri)
    for w in range(3):
        assert [m.step for m in c.get_metric_history(run_id, f"m{w}")] == list(range(40))
    tags = c.get_run(run_id).data.tags
    assert sum(1 for k in tags if k.startswith("w")) == 3 * 40
