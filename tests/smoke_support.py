"""The shared smoke sweep: ``mnv1-train -m experiment=smoke`` launched three times in one
workspace, once per test run (the session-scoped ``smoke`` fixture of ``tests/conftest.py``).

Every test that only reads what a sweep leaves behind reads this one (``tests/test_sweep_e2e.py``,
the browser check of ``tests/test_ui_browser.py``); training the same four cells again for each
would cost a sweep's start-up and training every time. A test that relaunches, kills or writes
runs keeps a workspace of its own. Under pytest-xdist the tests that use the fixture form one
group (``tests/schedule_support.py``), so the sweep is trained once per run, not once per worker.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Run
from sweep_support import FAILURE_INJECTION, Workspace

SMOKE_CELLS = ["mnv1_a0.25_r32", "mnv1_a0.25_r48", "mnv1_a0.5_r32", "mnv1_a0.5_r48"]
FAILING_CELL = "mnv1_a0.5_r48"


@dataclass
class Launch:
    """One ``mnv1-train -m experiment=smoke`` and the runs as it left them."""

    done: subprocess.CompletedProcess[str]
    parent: Run
    children: dict[str, Run]
    run_count: int
    compositions: list[str]
    """Hydra's config compositions in every process of the launch, one line each: the run mode
    and the overrides (tests/failure_injection/sitecustomize.py)."""


@dataclass
class SmokeSweep:
    """The smoke sweep launched three times in one workspace; its tests only read it.

    1. on the joblib launcher, two cells at once, one cell failing;
    2. relaunched on the basic launcher: reruns the failed cell only, then writes the report;
    3. relaunched again: every cell FINISHED, nothing to do.
    """

    ws: Workspace
    failing: Launch
    failed_traceback: str
    failed_matrix: str
    fixed: Launch
    again: Launch


def _launch(ws: Workspace, *extra: str, env: dict[str, str] | None = None) -> Launch:
    counted = ws.root / f"compositions-{len(list(ws.root.glob('compositions-*')))}.txt"
    counted.touch()
    seam = {
        "PYTHONPATH": os.pathsep.join([str(FAILURE_INJECTION), ws.env()["PYTHONPATH"]]),
        "MNV1_TEST_COUNT_COMPOSITIONS": str(counted),
    }
    done = ws.train("-m", "experiment=smoke", *extra, env={**seam, **(env or {})})
    [parent] = ws.parents()
    compositions = counted.read_text().splitlines()
    return Launch(done, parent, ws.children(), len(ws.runs()), compositions)


def launch_smoke(root: Path) -> SmokeSweep:
    ws = Workspace(root)
    # One cell fails in its worker (tests/failure_injection), two cells run at once.
    failing = _launch(
        ws, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", env=ws.failing_env(FAILING_CELL)
    )
    # Read now: the relaunch moves the traceback aside and rewrites the matrix.
    failed_traceback = ws.text(failing.children[FAILING_CELL], "traceback.txt")
    failed_matrix = ws.text(failing.parent, "status_matrix.md")
    fixed = _launch(ws)
    again = _launch(ws)
    return SmokeSweep(ws, failing, failed_traceback, failed_matrix, fixed, again)
