"""Many writers on a shared tracking server: PostgreSQL behind ``mlflow server`` with MLflow's
basic-auth app, as the README sets it up for several hosts or many parallel cells.

A throwaway PostgreSQL cluster (run as the ``postgres`` user) on a free loopback port; ``mlflow
server --app-name basic-auth --backend-store-uri postgresql://... --artifacts-destination <tmp>``
on another; the smoke study with two cells at a time (joblib), its credentials given in the URI
(``http://user:<password>@127.0.0.1:<port>``). Every run, per-epoch metric and artifact must be on
the server, ``mnv1-report`` must build from it, a relaunch must skip every cell, and the password
must appear in no param, tag, artifact, output file or log line of the sweep.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient
from mnv1.tracking.schema import PER_EPOCH_METRICS
from server_support import free_port, mlflow_server, postgres_cluster
from sweep_support import Workspace

SMOKE_CELLS = ["mnv1_a0.25_r32", "mnv1_a0.25_r48", "mnv1_a0.5_r32", "mnv1_a0.5_r48"]
USER = "user"
# MLflow's basic-auth app wants 12 characters or more; "secret" is the word the test hunts for.
PASSWORD = "secret-" + secrets.token_hex(4)
LAUNCH = ("-m", "experiment=smoke", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")


@dataclass
class Server:
    url: str  # without credentials
    root: Path
    artifacts: Path
    log: Path

    def uri_with(self, user: str, password: str) -> str:
        return self.url.replace("http://", f"http://{user}:{password}@", 1)

    def client(self) -> MlflowClient:
        return MlflowClient(self.url)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("tracking_server")
    artifacts = root / "artifacts"
    auth_ini = root / "basic_auth.ini"
    auth_ini.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
        f"admin_username = {USER}\n"
        f"admin_password = {PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # Without the cache every request re-hashes the password (PBKDF2): about a second of CPU
        # per call on a busy 2-core machine, minutes over a sweep.
        "auth_cache_ttl_seconds = 600\n"
    )
    env = dict(os.environ)
    env.update(
        MLFLOW_AUTH_CONFIG_PATH=str(auth_ini),
        MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),
        # No GenAI job runner (and so no huey consumers) on a training store.
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    with postgres_cluster() as database:
        args = [
            "--app-name",
            "basic-auth",
            "--backend-store-uri",
            database,
            "--artifacts-destination",
            str(artifacts),
            "--workers",
            "2",
        ]
        with mlflow_server(args, free_port(), root / "server.log", env=env) as url:
            yield Server(url, root, artifacts, root / "server.log")


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process reads the server back with the documented variables."""
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", USER)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@dataclass
class Launches:
    ws: Workspace
    first: subprocess.CompletedProcess[str]
    again: subprocess.CompletedProcess[str]
    report: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def launches(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Launches:
    """The sweep, its relaunch, and ``mnv1-report`` against the server."""
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    uri = server.uri_with(USER, PASSWORD)
    first = ws.train(*LAUNCH, f"tracking.uri={uri}", timeout=1500)
    assert first.returncode == 0, first.stdout + first.stderr
    again = ws.train(*LAUNCH, f"tracking.uri={uri}", timeout=900)
    env = ws.env(
        MLFLOW_TRACKING_URI=server.url,
        MLFLOW_TRACKING_USERNAME=USER,
        MLFLOW_TRACKING_PASSWORD=PASSWORD,
    )
    mnv1_report = str(Path(sys.executable).with_name("mnv1-report"))
    report = subprocess.run(
        [mnv1_report, "--experiment", "smoke", "--out", str(ws.root / "server_report")],
        cwd=ws.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Launches(ws, first, again, report)


def runs_of(client: MlflowClient) -> list[Run]:
    exp = client.get_experiment_by_name("smoke")
    assert exp is not None
    return list(client.search_runs([exp.experiment_id], max_results=1000))


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_every_run_metric_and_artifact_is_on_the_server(
    server: Server, launches: Launches, credentials: None
) -> None:
    assert "all cells FINISHED" in launches.first.stdout
    client = server.client()
    runs = runs_of(client)
    [parent] = [r for r in runs if r.data.tags.get("mnv1.kind") == "sweep"]
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mnv1.kind") == "cell"}
    assert sorted(children) == SMOKE_CELLS and len(runs) == 5
    assert parent.info.status == "FINISHED"
    for name, run in children.items():
        assert run.info.status == "FINISHED", name
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert 0.0 <= run.data.metrics["val_top1"] <= 1.0
        for key in PER_EPOCH_METRICS:
            steps = [m.step for m in client.get_metric_history(run.info.run_id, key)]
            assert steps == [1, 2], (name, key)
        logged = [a.path for a in client.list_artifacts(run.info.run_id)]
        assert logged == ["config.json", "costs.txt", "model_summary.txt"], name
        local = client.download_artifacts(run.info.run_id, "config.json", str(server.root))
        assert f'"resolution": {int(name.split("_r")[1])}' in Path(local).read_text()
    # Two cells trained at once: some pair of runs overlapped in time.
    spans = sorted((r.info.start_time, r.info.end_time) for r in children.values())
    assert any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1))
    top = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"grid.json", "sweep_config.yaml", "status_matrix.md", "report"} <= top
    report = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/report.md", "report/report.html", "report/figure4.png"} <= report
    # The server keeps the artifacts under --artifacts-destination, not the launch directory.
    stored = {p.name for p in server.artifacts.rglob("*") if p.is_file()}
    assert {"config.json", "grid.json", "report.md"} <= stored
    assert not (launches.ws.root / "mlruns").exists()
    assert not (launches.ws.root / "mlflow.db").exists()
    # The printed URL is the server's own UI, without the credentials.
    [url] = re.findall(r"^Runs: (\S+)", launches.first.stdout, flags=re.M)
    assert url.startswith(f"{server.url}/#/experiments/{parent.info.experiment_id}/runs?")


@pytest.mark.slow
def test_mnv1_report_builds_from_the_server(launches: Launches) -> None:
    done = launches.report
    assert done.returncode == 0, done.stdout + done.stderr
    out = launches.ws.root / "server_report"
    assert {"report.md", "report.html", "figure4.png", "grid.csv"} <= {
        p.name for p in out.iterdir()
    }
    assert "mnv1_a0.5_r48" in (out / "grid.csv").read_text()


@pytest.mark.slow
def test_a_relaunch_skips_every_cell(server: Server, launches: Launches, credentials: None) -> None:
    again = launches.again
    assert again.returncode == 0, again.stdout + again.stderr
    # Each joblib job logs its decision to its own log file (and to the console).
    newest = max((launches.ws.root / "multirun" / "smoke").iterdir())
    logs = "".join(p.read_text() for p in newest.glob("*/mnv1.log"))
    skipped = {line.split(": skipped, run ")[0].rsplit(" - ", 1)[1] for line in
               logs.splitlines() if ": skipped, run " in line}  # fmt: skip
    assert skipped == set(SMOKE_CELLS), logs
    runs = runs_of(server.client())
    assert len(runs) == 5  # no new run at all
    [parent] = [r for r in runs if r.data.tags.get("mnv1.kind") == "sweep"]
    assert parent.data.tags["mnv1.launches"] == "2"


@pytest.mark.slow
def test_the_password_appears_nowhere(
    server: Server, launches: Launches, credentials: None
) -> None:
    """Not in a param, tag or artifact of any run, an experiment tag, a file the launches wrote
    (Hydra's logs and saved overrides, the reports, checkpoints' metadata), or their output."""
    client = server.client()
    texts: dict[str, str] = {}
    exp = client.get_experiment_by_name("smoke")
    assert exp is not None
    texts["experiment tags"] = repr(exp.tags)
    fetched = server.root / "fetched"
    for run in runs_of(client):
        texts[f"{run.info.run_name} params"] = repr(run.data.params)
        texts[f"{run.info.run_name} tags"] = repr(run.data.tags)
        local = Path(client.download_artifacts(run.info.run_id, "", str(fetched / run.info.run_id)))
        for path in local.rglob("*"):
            if path.is_file():
                texts[str(path)] = path.read_bytes().decode("latin-1")
    for path in launches.ws.root.rglob("*"):
        if path.is_file() and path.suffix != ".db":
            texts[str(path)] = path.read_bytes().decode("latin-1")
    for name, done in (("launch", launches.first), ("relaunch", launches.again)):
        texts[name] = done.stdout + done.stderr
    texts["mnv1-report"] = launches.report.stdout + launches.report.stderr
    assert len(texts) > 30
    for where, text in texts.items():
        assert PASSWORD not in text, where
        assert "secret" not in text.lower(), where
    # The parameter that records the store holds the URI without its user info.
    cell = next(r for r in runs_of(client) if r.data.tags.get("mnv1.kind") == "cell")
    assert cell.data.params["tracking.uri"] == server.url


@pytest.mark.slow
def test_wrong_credentials_stop_the_sweep_before_anything(
    server: Server, tmp_path: Path, credentials: None
) -> None:
    ws = Workspace(tmp_path)
    done = ws.train(*LAUNCH, f"tracking.uri={server.uri_with(USER, 'wrong-password-1')}")
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"the MLflow tracking server at {server.url} refused the credentials" in done.stderr
    assert "wrong-password-1" not in done.stdout + done.stderr
    assert sorted(p.name for p in ws.root.iterdir()) == []
