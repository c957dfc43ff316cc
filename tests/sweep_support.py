"""Helpers for the sweep tests: run the real ``mnv1-train`` console script in a temporary
directory against a temporary SQLite store, and read the result back through MLflow's API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

REPO = Path(__file__).resolve().parent.parent
# A sitecustomize that makes one named cell fail (tests/failure_injection/sitecustomize.py).
FAILURE_INJECTION = Path(__file__).resolve().parent / "failure_injection"
# The installed console script, run with this checkout first on the path (as CI runs it).
SCRIPT = Path(sys.executable).with_name("mnv1-train")


def train_command() -> list[str]:
    if SCRIPT.exists():
        return [str(SCRIPT)]
    found = shutil.which("mnv1-train")
    if found is None:
        raise FileNotFoundError("the mnv1-train console script is not installed (pip install -e .)")
    return [found]


@dataclass
class Workspace:
    """One test's directory: the launch directory, its SQLite store and its data directory."""

    root: Path
    # Added to every command's environment (a cluster's SLURM_CONF, RAY_ADDRESS).
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def data_dir(self) -> Path:
        return self.root / "tfds"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
        env["MLFLOW_TRACKING_URI"] = self.uri
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
        env["CUDA_VISIBLE_DEVICES"] = ""
        env.update(self.extra_env)
        env.update(extra)
        return env

    def popen(self, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*train_command(), *args, f"data.data_dir={self.data_dir}"],
            cwd=self.root,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **kwargs,
        )

    def launch_logged(self, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        """``mnv1-train ARGS`` in the background, its output into ``launch.log`` (a pipe nobody
        reads while the test waits could fill up and stall the launcher)."""
        log = self.root / "launch.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                [*train_command(), *args, f"data.data_dir={self.data_dir}"],
                cwd=self.root,
                env=self.env(),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        return proc, log

    def failing_env(self, cell: str) -> dict[str, str]:
        """Environment entries under which the worker of ``cell`` raises instead of training."""
        path = os.pathsep.join([str(FAILURE_INJECTION), self.env()["PYTHONPATH"]])
        return {"PYTHONPATH": path, "MNV1_TEST_FAIL_CELL": cell}

    def standin_env(self) -> dict[str, str]:
        """Environment entries under which every worker trains the stand-in of
        ``tests/tune_standin.py`` instead of a model (a tuner's trials in seconds)."""
        path = os.pathsep.join([str(FAILURE_INJECTION), self.env()["PYTHONPATH"]])
        return {"PYTHONPATH": path, "MNV1_TEST_TRIAL_STANDIN": "1"}

    def failing_export_env(self, cell: str) -> dict[str, str]:
        """Environment entries under which ``cell`` trains, then its int8 conversion fails."""
        path = os.pathsep.join([str(FAILURE_INJECTION), self.env()["PYTHONPATH"]])
        return {"PYTHONPATH": path, "MNV1_TEST_FAIL_EXPORT_CELL": cell}

    def holding_env(self, marker: Path, epoch: int = 1) -> dict[str, str]:
        """Environment entries under which the first worker to finish ``epoch`` is held after its
        checkpoint (tests/failure_injection), its run key written into ``marker``."""
        path = os.pathsep.join([str(FAILURE_INJECTION), self.env()["PYTHONPATH"]])
        return {
            "PYTHONPATH": path,
            "MNV1_TEST_HOLD_AFTER_EPOCH": str(epoch),
            "MNV1_TEST_HOLD_MARKER": str(marker),
        }

    def train(
        self, *args: str, timeout: float = 900, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``mnv1-train ARGS data.data_dir=<tmp>/tfds`` in this directory, with ``env`` added
        to the environment; stdout and stderr together in ``.stdout``."""
        return subprocess.run(
            [*train_command(), *args, f"data.data_dir={self.data_dir}"],
            cwd=self.root,
            env=self.env(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def client(self) -> MlflowClient:
        return MlflowClient(self.uri)

    def runs(self, experiment: str = "smoke") -> list[Run]:
        c = self.client()
        exp = c.get_experiment_by_name(experiment)
        return [] if exp is None else list(c.search_runs([exp.experiment_id], max_results=1000))

    def parents(self, experiment: str = "smoke") -> list[Run]:
        return [r for r in self.runs(experiment) if r.data.tags.get("mnv1.kind") == "sweep"]

    def children(self, experiment: str = "smoke") -> dict[str, Run]:
        """Cell runs by run name."""
        cells = [r for r in self.runs(experiment) if r.data.tags.get("mnv1.kind") == "cell"]
        return {r.info.run_name: r for r in cells}

    def steps(self, run: Run, key: str) -> list[int]:
        return [m.step for m in self.client().get_metric_history(run.info.run_id, key)]

    def text(self, run: Run, name: str) -> str:
        local = self.client().download_artifacts(run.info.run_id, name, str(self.root))
        return Path(local).read_text()


def wait_until_held(
    marker: Path, proc: subprocess.Popen[Any], log: Path, timeout: float = 400
) -> str:
    """The run key of the cell held by :meth:`Workspace.holding_env`, once one is."""
    deadline = time.monotonic() + timeout
    while not (marker.exists() and (key := marker.read_text())):
        assert proc.poll() is None, "the sweep ended before any cell was held:\n" + log.read_text()
        assert time.monotonic() < deadline, f"no cell was held within {timeout:.0f} s"
        time.sleep(0.1)
    return key
