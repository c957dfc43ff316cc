"""An interrupt at any moment of a first ``mnv1-train -m experiment=smoke`` is safe.

One workspace (its own SQLite store, data directory, probe cache and ``TMPDIR``), launched again
and again and stopped in each phase in turn — validation, the probe, the store's creation, the
dataset's preparation, a cell, the report — by SIGINT or SIGTERM to the process group, as a
terminal's Ctrl-C or a scheduler sends it. After each: exit 130 / 143, one line, no traceback, no
process or temporary directory left, and ``mnv1-report --status`` answers on the store. One final
relaunch then finishes the sweep with every cell FINISHED, each in exactly one run."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from interrupt_support import Stopped, assert_stopped_cleanly, interrupt_at, marker
from mnv1.tracking import sqlite_store
from sweep_support import Workspace, train_command

SMOKE_CELLS = ["mnv1_a0.25_r32", "mnv1_a0.25_r48", "mnv1_a0.5_r32", "mnv1_a0.5_r48"]
ARGS = ("-m", "experiment=smoke")
RESUME = "Resume with: mnv1-train -m experiment=smoke"


def _workspace(root: Path) -> Workspace:
    ws = Workspace(root)
    tmp = root / "tmp"
    tmp.mkdir()
    # Its own probe cache (the probe really runs, and can be interrupted) and its own TMPDIR
    # (the probe's temporary directory must be gone afterwards; other tests use /tmp too).
    ws.extra_env.update({"MNV1_PROBE_DIR": str(root / "probe"), "TMPDIR": str(tmp)})
    return ws


def _stop(ws: Workspace, line: str, signum: int) -> Stopped:
    command = [*train_command(), *ARGS, f"data.data_dir={ws.data_dir}"]
    stopped = interrupt_at(command, cwd=ws.root, env=ws.env(), line=line, signum=signum)
    assert_stopped_cleanly(stopped, "mnv1-train", ws.root / "tmp")
    assert RESUME in stopped.output, stopped.output
    return stopped


def _status(ws: Workspace) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).with_name("mnv1-report")), "--experiment", "smoke", "--status"],
        cwd=ws.root,
        env=ws.env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _status_works(ws: Workspace) -> str:
    """``mnv1-report --status`` on the store: exit 0 with the matrix, or, before any sweep
    opened its parent run, a one-line error (exit 2); never a traceback."""
    done = _status(ws)
    both = done.stdout + done.stderr
    assert "Traceback" not in both, both
    assert done.returncode in (0, 2), both
    if done.returncode == 2:
        assert both.startswith("mnv1-report: error: ") and both.count("\n") == 1, both
    return both


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_an_interrupt_in_each_phase_of_a_first_sweep_then_a_relaunch_finishes_it(
    tmp_path: Path,
) -> None:
    ws = _workspace(tmp_path)
    db = ws.root / "mlflow.db"

    for signum in (signal.SIGINT, signal.SIGTERM):
        stopped = _stop(ws, marker("validation"), signum)
        assert "no cell had started" in stopped.output
        assert not db.exists()
    absent = f"mnv1-report: error: there is no tracking store at {db} yet; a sweep creates it\n"
    assert _status(ws).stderr == absent

    # The probe's own line: its child process is running now. mnv1-plan runs the same probe.
    plan = [str(Path(sys.executable).with_name("mnv1-plan")), "experiment=smoke"]
    stopped = interrupt_at(
        plan, cwd=ws.root, env=ws.env(), line="probe: timing the costliest", signum=signal.SIGINT
    )
    assert_stopped_cleanly(stopped, "mnv1-plan", ws.root / "tmp")
    _stop(ws, "probe: timing the costliest", signal.SIGTERM)
    assert not db.exists()

    # The store is being created (MLflow's migrations take seconds): no store, or a whole one.
    for signum in (signal.SIGINT, signal.SIGTERM):
        _stop(ws, marker("store"), signum)
        sqlite_store.check(db)
    _status_works(ws)

    # Dataset preparation: a Ctrl-C there was once raised inside a GC callback and lost, and
    # the sweep ran on to exit 0.
    for signum in (signal.SIGINT, signal.SIGTERM):
        _stop(ws, marker("data"), signum)
    sqlite_store.check(db)

    # A cell whose worker is starting: the worker is stopped and the run stands KILLED; then
    # its resumption, stopped the same way.
    first = SMOKE_CELLS[0]
    for line, signum in (
        (f"{first}: new run ", signal.SIGINT),
        (f"{first}: resuming run ", signal.SIGTERM),
    ):
        stopped = _stop(ws, line, signum)
        assert f"marked KILLED: {first}." in stopped.output, stopped.output
    assert ws.children()[first].info.status == "KILLED"
    _status_works(ws)
    assert all(p.info.status == "KILLED" for p in ws.parents())

    # The report: every cell has finished by then (the second launch skips them all).
    for signum in (signal.SIGTERM, signal.SIGINT):
        _stop(ws, marker("report"), signum)
        assert {r.info.status for r in ws.children().values()} == {"FINISHED"}
        assert "4 cells, 4 finished" in _status_works(ws)

    done = ws.train(*ARGS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "Report: " in done.stdout and "Report: FAILED" not in done.stdout
    cells = [r for r in ws.runs() if r.data.tags.get("mnv1.kind") == "cell"]
    assert sorted(r.info.run_name for r in cells) == SMOKE_CELLS  # each cell in exactly one run
    assert {r.info.status for r in cells} == {"FINISHED"}
    [parent] = ws.parents()
    assert parent.info.status == "FINISHED"
    assert list((ws.root / "tmp").glob("mnv1-*")) == []
