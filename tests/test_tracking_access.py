"""Reaching the tracking store: credentials out of URIs, a fast and clear failure when the server
is not there, and experiments the MLflow UI opens as training experiments."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from mnv1.tracking.store import (
    EXPERIMENT_KIND_TAG,
    EXPERIMENT_KIND_TRAINING,
    TrackingUnreachableError,
    check_reachable,
    ensure_experiment,
)
from mnv1.tracking.uri import (
    adopt_credentials,
    connect_uri,
    redact,
    resolve_uri,
    split_credentials,
)
from sweep_support import Workspace

from mnv1.cli.train import _without_credentials

CREDENTIAL_VARS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*CREDENTIAL_VARS, "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_split_and_redact() -> None:
    assert split_credentials("http://alice:s3cr%40t@10.0.0.5:5000/mlflow") == (
        "http://10.0.0.5:5000/mlflow",
        "alice",
        "s3cr@t",
    )
    assert split_credentials("https://alice@host") == ("https://host", "alice", None)
    assert split_credentials("http://host:5000") == ("http://host:5000", None, None)
    # A database URI is not split here (adopt_credentials sets its password aside).
    db = "postgresql://u:pw@db/mlflow"
    assert split_credentials(db) == (db, None, None)
    assert redact(db) == "postgresql://u:***@db/mlflow"
    assert redact("http://alice:pw@host:5000/x?y=1") == "http://alice:***@host:5000/x?y=1"
    # A user part alone may be a token: hidden whole.
    assert redact("https://ghp_token@host") == "https://***@host"
    assert redact("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"


def test_credentials_move_into_mlflows_variables(clean_env: pytest.MonkeyPatch) -> None:
    env: dict[str, str] = {"MLFLOW_TRACKING_PASSWORD": "old"}
    assert adopt_credentials("http://bob:pw@127.0.0.1:1234", env) == "http://127.0.0.1:1234"
    assert env == {"MLFLOW_TRACKING_USERNAME": "bob", "MLFLOW_TRACKING_PASSWORD": "pw"}
    clean_env.setenv("MLFLOW_TRACKING_URI", "http://carol:pw2@127.0.0.1:99")
    assert resolve_uri() == "http://127.0.0.1:99"
    assert (os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]) == (
        "carol",
        "pw2",
    )


@pytest.mark.parametrize(
    "scheme", ["postgresql", "postgresql+psycopg2", "mysql+pymysql", "mssql+pyodbc", "oracle"]
)
def test_a_database_password_is_set_aside_and_put_back_only_to_connect(scheme: str) -> None:
    env: dict[str, str] = {}
    uri = f"{scheme}://mnv1:s3cr%40t:x@db.example:5432/mlflow?sslmode=require"
    clean = adopt_credentials(uri, env)
    assert clean == f"{scheme}://mnv1:***@db.example:5432/mlflow?sslmode=require"
    assert env == {"MNV1_TRACKING_DB_PASSWORD": "s3cr@t:x"}
    assert adopt_credentials(clean, env) == clean  # already redacted: left alone
    assert (
        connect_uri(clean, env)
        == f"{scheme}://mnv1:s3cr%40t%3Ax@db.example:5432/mlflow?sslmode=require"
    )
    assert connect_uri(clean, {}) == clean  # no password set aside: nothing to put back
    assert redact(clean) == clean
    # Without a password (PGPASSWORD, a .pgpass file, a socket) nothing moves.
    assert adopt_credentials("postgresql://mnv1@db/mlflow", env) == "postgresql://mnv1@db/mlflow"


def test_the_command_line_loses_the_password_before_hydra_sees_it(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("MLFLOW_TRACKING_URI", "http://u2:p2@127.0.0.1:7")
    out = _without_credentials(
        ["-m", "experiment=smoke", "tracking.uri=http://u:secret@127.0.0.1:5000", "++x=1"]
    )
    assert out == ["-m", "experiment=smoke", "tracking.uri=http://127.0.0.1:5000", "++x=1"]
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:7"
    # The command line is the more specific source: it wins over the variable.
    assert os.environ["MLFLOW_TRACKING_USERNAME"] == "u"
    assert os.environ["MLFLOW_TRACKING_PASSWORD"] == "secret"


def test_probe_of_a_closed_port_fails_fast_naming_the_uri(clean_env: pytest.MonkeyPatch) -> None:
    uri = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    with pytest.raises(TrackingUnreachableError) as caught:
        check_reachable(uri)
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert uri in message and "cannot be reached" in message
    assert "Check that `mlflow server` is running there" in message
    check_reachable("sqlite:////nonexistent/dir/mlflow.db")  # a local store needs no probe


def test_sweep_against_a_down_server_stops_before_anything(tmp_path: Path) -> None:
    """The real ``mnv1-train``: exit 3 within 30 s, one message naming the URI and what to check,
    and nothing created: no store, no run, no Hydra output directory, no prepared dataset."""
    ws = Workspace(tmp_path)
    uri = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    done = ws.train("-m", "experiment=smoke", f"tracking.uri={uri}", timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 3, done.stdout + done.stderr
    assert elapsed < 30, f"took {elapsed:.1f} s"
    errors = [line for line in done.stderr.splitlines() if line.startswith("mnv1-train:")]
    assert len(errors) == 1, done.stderr
    assert f"the MLflow tracking server at {uri} cannot be reached" in errors[0]
    assert "Nothing was started" in errors[0]
    assert "training" not in done.stdout.lower()
    assert sorted(p.name for p in ws.root.iterdir()) == []
    print(f"down server: mnv1-train exited {done.returncode} after {elapsed:.1f} s")


def test_experiments_open_as_training_experiments(tmp_path: Path, sqlite_uri: str) -> None:
    uri = sqlite_uri
    client = MlflowClient(uri)
    new = ensure_experiment(uri, "fresh")
    assert client.get_experiment(new).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND_TRAINING
    # An experiment made before the tag existed gets it on the next sweep ...
    old = client.create_experiment("old", artifact_location=(tmp_path / "a").as_uri())
    assert EXPERIMENT_KIND_TAG not in client.get_experiment(old).tags
    assert ensure_experiment(uri, "old") == old
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == EXPERIMENT_KIND_TRAINING
    # ... but a kind a user chose in the UI stays.
    client.set_experiment_tag(old, EXPERIMENT_KIND_TAG, "genai_development")
    ensure_experiment(uri, "old")
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == "genai_development"
