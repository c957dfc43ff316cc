"""An interrupt at any moment of ``mnv1-tune`` is safe, a second driver of a running search is
refused with exit 1, and ``mnv1-ui`` stops whole.

The search trains the stand-in trial (``tests/tune_standin.py``: seconds per trial), so the
phases — validation, the store's creation, a trial — are cheap to reach. One workspace is
stopped in each in turn by SIGINT or SIGTERM to its process group; one relaunch then finishes
the search with every trial FINISHED, each in exactly one run."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from interrupt_support import assert_stopped_cleanly, interrupt_at, marker
from mnv1.tracking import sqlite_store
from server_support import free_port, wait_http
from tune_support import TuneSpace

from mnv1.cli.tune import Plan, plan
from mnv1.tune.project import project_for
from mnv1.tune.search import hold_search


def _script(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_an_interrupt_in_each_phase_of_a_search_then_a_relaunch_finishes_it(
    tmp_path: Path,
) -> None:
    ts = TuneSpace(tmp_path)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    ts.extra_env["TMPDIR"] = str(tmp)
    # Each trial is held before its first epoch: the signal lands while a trial's process runs.
    ts.extra_env["MNV1_STANDIN_HOLD"] = "1"
    ts.extra_env.update(ts.standin_env())
    args = ts.args("tune.max_trials=3")
    command = [_script("mnv1-tune"), *args]
    db = tmp_path / "mlflow.db"

    for line, signum in (
        (marker("validation"), signal.SIGTERM),
        (marker("validation"), signal.SIGINT),
        (marker("store"), signal.SIGINT),
        (marker("store"), signal.SIGTERM),
        (marker("trial"), signal.SIGTERM),
        (marker("trial"), signal.SIGINT),
    ):
        stopped = interrupt_at(command, cwd=tmp_path, env=ts.env(), line=line, signum=signum)
        assert_stopped_cleanly(stopped, "mnv1-tune", tmp)
        assert "Resume with: mnv1-tune experiment=smoke " in stopped.output
        sqlite_store.check(db)  # absent or whole, never half-created
    assert any(r.info.status == "KILLED" for r in ts.kind("tune"))

    # A second driver of the same search, while this one holds it: exit 1, one line.
    found = plan(args)
    assert isinstance(found, Plan), found
    lock = hold_search(project_for(found.cells[0], found.tune, found.space))
    try:
        busy = ts.cli("mnv1-tune", *args, timeout=300)
    finally:
        lock.release()
    assert busy.returncode == 1, busy.stdout + busy.stderr
    assert "Traceback" not in busy.stdout + busy.stderr
    assert "is already running elsewhere" in busy.stderr

    del ts.extra_env["MNV1_STANDIN_HOLD"]  # the relaunch's trials train to the end
    done = ts.cli("mnv1-tune", *args, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    trials = ts.trials()
    assert sorted(trials) == ["0", "1", "2"]  # each trial in exactly one run
    assert {r.info.status for r in trials.values()} == {"FINISHED"}
    [search] = ts.kind("tune")
    assert search.info.status == "FINISHED"
    assert list(tmp.glob("mnv1-*")) == []


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_mnv1_ui_interrupted_leaves_no_server_process(tmp_path: Path, signum: int) -> None:
    ts = TuneSpace(tmp_path)
    db = tmp_path / "mlflow.db"
    sqlite_store.create(db)
    port = free_port()
    command = [_script("mnv1-ui"), "--tracking-uri", f"sqlite:///{db}", "--port", str(port)]
    server: list[psutil.Process] = []

    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=ts.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", proc)
        server = psutil.Process(proc.pid).children(recursive=True)
        assert server
        proc.send_signal(signum)  # to mnv1-ui alone: it stops the server's group itself
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum, output
    assert "Traceback" not in output, output
    assert "mnv1-ui: interrupted; the MLflow UI server was stopped." in output
    _, alive = psutil.wait_procs(server, timeout=5)
    assert not alive, [p.cmdline() for p in alive]
