"""Helpers for the tuning tests: a workspace whose overrides keep every path in a temporary
directory, an in-process stand-in trial, and MLflow reads of a search's runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tune_standin
import yaml
from mlflow.entities import Run
from sweep_support import Workspace

CELL = "mnv1_a0.25_r32"


@dataclass
class TuneSpace(Workspace):
    """A sweep test's workspace (its SQLite store, data directory and environment), plus where a
    search keeps its projects and its tuned file."""

    @property
    def tuned(self) -> Path:
        return self.root / "tuned" / "smoke.yaml"

    def args(self, *extra: str, cell: str = CELL) -> list[str]:
        return [
            "experiment=smoke",
            f"tune.dir={self.root / 'tune'}",
            f"tune.tuned_file={self.tuned}",
            f"tracking.uri={self.uri}",
            f"data.data_dir={self.root / 'tfds'}",
            f"tune.cells=[{cell}]",
            *extra,
        ]

    def cli(
        self, script: str, *args: str, timeout: float = 900, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).with_name(script)), *args],
            cwd=self.root,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def runs(self, experiment: str = "smoke_tune") -> list[Run]:
        return super().runs(experiment)

    def kind(self, kind: str, experiment: str = "smoke_tune") -> list[Run]:
        return [r for r in self.runs(experiment) if r.data.tags.get("mnv1.kind") == kind]

    def trials(self) -> dict[str, Run]:
        """Trial runs by KerasTuner trial id."""
        found = {r.data.tags["mnv1.trial_id"]: r for r in self.kind("trial")}
        assert len(found) == len(self.kind("trial")), "a trial id has two runs"
        return found

    def steps(self, run: Run, key: str) -> list[int]:
        return [m.step for m in self.client().get_metric_history(run.info.run_id, key)]

    def artifacts(self, run: Run) -> set[str]:
        return {a.path for a in self.client().list_artifacts(run.info.run_id)}

    def text(self, run: Run, name: str) -> str:
        local = self.client().download_artifacts(run.info.run_id, name, str(self.root))
        return Path(local).read_text()

    def tuned_file(self) -> dict[str, Any]:
        return dict(yaml.safe_load(self.tuned.read_text()))


def expected_top1(run: Run) -> float:
    """What the stand-in reports for this trial's values (read back from its params)."""
    p = run.data.params
    return tune_standin.objective(
        float(p["train.learning_rate"]),
        float(p["model.dropout"]),
        float(p["train.label_smoothing"]),
    )


def in_process(environ: Mapping[str, str] | None = None) -> Any:
    """A Launch that trains the stand-in in this process (no process start: fast tests)."""

    def launch(config: Path, run_id: str, uri: str, cuda: str | None) -> tuple[int, str]:
        argv = ["--config", str(config), "--run-log", f"mlflow:{run_id}"]
        return tune_standin.main(argv, dict(environ or {})), ""

    return launch
