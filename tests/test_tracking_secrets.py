"""No secret is ever written down, whatever the scheme of the tracking URI.

A real PostgreSQL cluster that checks its password (scram-sha-256) is the tracking store, named
by ``postgresql://postgres:<password>@127.0.0.1:<port>/mlflow`` on the command line; a token
sits in the environment too (``MLFLOW_TRACKING_TOKEN``). A one-cell sweep (``mnv1-train -m``),
a two-trial search (``mnv1-tune``, the stand-in trial) and ``mnv1-report`` all reach the store,
and neither secret appears in any param, tag, experiment tag or artifact of any run, in any file
under the launch directory (Hydra's ``.hydra/`` and ``multirun.yaml``, the report, the
artifacts), or in what the commands printed. Where the URI is recorded, it is
``postgresql://postgres:***@...``."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from server_support import postgres_cluster
from sweep_support import Workspace

PASSWORD = "pw-" + secrets.token_hex(8)
TOKEN = "tok-" + secrets.token_hex(8)


@dataclass
class Launched:
    ws: Workspace
    uri: str  # with the password: what the user typed
    outputs: dict[str, str]


def _script(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launched]:
    ws = Workspace(tmp_path_factory.mktemp("secrets"))
    ws.extra_env["MLFLOW_TRACKING_TOKEN"] = TOKEN
    outputs: dict[str, str] = {}

    def run(name: str, *args: str, env: dict[str, str] | None = None) -> None:
        done = subprocess.run(
            [_script(name), *args],
            cwd=ws.root,
            env=ws.env(**(env or {})),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        outputs[name] = done.stdout + done.stderr
        assert done.returncode == 0, outputs[name]

    with postgres_cluster(password=PASSWORD) as uri:
        assert f":{PASSWORD}@" in uri
        data = f"data.data_dir={ws.data_dir}"
        cell = ("model.alpha=0.25", "model.resolution=32", "train.epochs=1")
        run("mnv1-train", "-m", "experiment=smoke", *cell, data, f"tracking.uri={uri}")
        run(
            "mnv1-tune",
            "experiment=smoke",
            "tune.max_trials=2",
            f"tune.dir={ws.root / 'tune'}",
            f"tune.tuned_file={ws.root / 'tuned' / 'smoke.yaml'}",
            f"tune.cells=[{'mnv1_a0.25_r32'}]",
            data,
            f"tracking.uri={uri}",
            env=ws.standin_env(),  # the trials train the stand-in: seconds each
        )
        report = str(ws.root / "report")
        run("mnv1-report", "--experiment", "smoke", "--tracking-uri", uri, "--out", report)
        yield Launched(ws, uri, outputs)


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_a_database_password_appears_nowhere(launched: Launched) -> None:
    client = MlflowClient(launched.uri)
    texts: dict[str, str] = dict(launched.outputs)
    fetched = launched.ws.root.parent / "fetched"
    experiments = [e for e in client.search_experiments() if e.name != "Default"]
    assert sorted(e.name for e in experiments) == ["smoke", "smoke_tune"]
    for exp in experiments:
        texts[f"{exp.name} tags"] = repr(exp.tags)
        for run in client.search_runs([exp.experiment_id], max_results=1000):
            name = f"{exp.name}/{run.info.run_name}"
            texts[f"{name} params"] = repr(run.data.params)
            texts[f"{name} tags"] = repr(run.data.tags)
            local = client.download_artifacts(run.info.run_id, "", str(fetched / run.info.run_id))
            for path in Path(local).rglob("*"):
                if path.is_file():
                    texts[str(path)] = path.read_bytes().decode("latin-1")
    for path in launched.ws.root.rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode("latin-1")
    # Hydra's own files and the report are among them.
    assert any(p.endswith("multirun.yaml") for p in texts)
    assert any("/.hydra/" in p for p in texts)
    assert any(p.endswith("report.md") for p in texts)
    assert len(texts) > 30
    for where, text in texts.items():
        assert PASSWORD not in text, where
        assert TOKEN not in text, where

    redacted = launched.uri.replace(f":{PASSWORD}@", ":***@")
    smoke = client.get_experiment_by_name("smoke")
    assert smoke is not None
    cell = next(
        r
        for r in client.search_runs([smoke.experiment_id])
        if r.data.tags.get("mnv1.kind") == "cell"
    )
    assert cell.info.status == "FINISHED"
    assert cell.data.params["tracking.uri"] == redacted
    assert f"tracking store `{redacted}`" in texts[str(launched.ws.root / "report" / "report.md")]
