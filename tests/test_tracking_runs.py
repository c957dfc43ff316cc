"""Run lifecycle against a real SQLite store: find by key, reopen, end, reconcile dead owners."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient
from mnv1.tracking import runs, schema
from mnv1.tracking.claim import CREATE, RESUME, SKIP, Claim, claim_run
from mnv1.tracking.store import ensure_experiment


@pytest.fixture
def store(sqlite_uri: str) -> tuple[str, str]:
    uri = sqlite_uri
    return uri, ensure_experiment(uri, "lifecycle")


def dead_owner() -> runs.Owner:
    """The owner tags of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = psutil.Process(proc.pid).create_time()
    proc.wait()
    return runs.Owner(socket.gethostname(), proc.pid, started)


def cell_tags(key: str, owner: runs.Owner) -> dict[str, str]:
    return {schema.TAG_KIND: schema.KIND_CELL, schema.TAG_RUN_KEY: key, **owner.tags()}


def test_owner_alive() -> None:
    me = runs.Owner.current()
    assert runs.owner_alive(me.tags()) is True
    assert runs.owner_alive(dead_owner().tags()) is False
    # Same pid, another start time: the pid was recycled, the owner is gone.
    recycled = runs.Owner(me.host, me.pid, me.started - 3600)
    assert runs.owner_alive(recycled.tags()) is False
    elsewhere = runs.Owner("another-host.example", me.pid, me.started)
    assert runs.owner_alive(elsewhere.tags()) is None
    assert runs.owner_alive({}) is None


def test_find_cell_returns_the_newest_run_of_a_key(store: tuple[str, str]) -> None:
    uri, exp = store
    me = runs.Owner.current()
    old = runs.create(uri, exp, "mnv1_a0.5_r32", cell_tags("k1", me))
    runs.finish(uri, old, runs.FAILED)
    new = runs.create(uri, exp, "mnv1_a0.5_r32", cell_tags("k1", me))
    other = runs.create(uri, exp, "mnv1_a0.25_r32", cell_tags("k2", me))
    found = runs.find_cell(uri, exp, "k1")
    assert found is not None and found.run_id == new and found.status == runs.RUNNING
    assert found.tags[runs.TAG_ATTEMPT] == "1" and found.name == "mnv1_a0.5_r32"
    assert runs.find_cell(uri, exp, "nope") is None
    parent = runs.create(
        uri, exp, "sweep", {schema.TAG_KIND: schema.KIND_SWEEP, schema.TAG_SWEEP: "s1"}
    )
    child = runs.create(uri, exp, "c", cell_tags("k3", me), parent_run_id=parent)
    assert MlflowClient(uri).get_run(child).data.tags["mlflow.parentRunId"] == parent
    sweep = runs.newest(uri, exp, schema.KIND_SWEEP, {schema.TAG_SWEEP: "s1"})
    assert sweep is not None and sweep.run_id == parent
    assert runs.find_cell(uri, exp, "k2") is not None and other


def test_reopen_counts_attempts_and_archives_the_old_traceback(store: tuple[str, str]) -> None:
    uri, exp = store
    run_id = runs.create(uri, exp, "mnv1_a0.5_r32", cell_tags("k", runs.Owner.current()))
    runs.log_text(uri, run_id, "traceback.txt", "Traceback: boom\n")
    runs.finish(uri, run_id, runs.FAILED)
    failed = runs.get(uri, run_id)
    assert failed.status == runs.FAILED and failed.minutes is not None
    runs.reopen(uri, failed, runs.Owner.current(), archive=("traceback.txt", "absent.txt"))
    again = runs.get(uri, run_id)
    assert again.status == runs.RUNNING
    assert again.tags[runs.TAG_ATTEMPT] == "2"
    assert runs.artifact_names(uri, run_id) == ["attempt1"]
    assert runs.artifact_names(uri, run_id, "attempt1") == ["attempt1/traceback.txt"]
    text = MlflowClient(uri).download_artifacts(run_id, "attempt1/traceback.txt")
    assert Path(text).read_text() == "Traceback: boom\n"


def test_reconcile_marks_only_runs_whose_owner_is_gone(store: tuple[str, str]) -> None:
    uri, exp = store
    me = runs.Owner.current()
    orphan = runs.create(uri, exp, "orphan", cell_tags("a", dead_owner()))
    live = runs.create(uri, exp, "live", cell_tags("b", me))
    remote = runs.create(uri, exp, "remote", cell_tags("c", runs.Owner("elsewhere", 1, 0.0)))
    done = runs.create(uri, exp, "done", cell_tags("d", dead_owner()))
    runs.finish(uri, done, runs.FINISHED)

    reconciled = runs.reconcile_stale(uri, exp)
    assert [r.run_id for r in reconciled] == [orphan]
    after = {r: runs.get(uri, r) for r in (orphan, live, remote, done)}
    assert after[orphan].status == runs.KILLED
    assert after[orphan].tags[runs.TAG_RECONCILED].startswith("owner pid ")
    assert after[live].status == runs.RUNNING
    assert after[remote].status == runs.RUNNING
    assert after[done].status == runs.FINISHED
    assert runs.reconcile_stale(uri, exp) == []


def test_cell_states_take_the_newest_run_per_key(store: tuple[str, str]) -> None:
    uri, exp = store
    me = runs.Owner.current()
    first = runs.create(uri, exp, "x", cell_tags("k1", me))
    runs.finish(uri, first, runs.FAILED)
    second = runs.create(uri, exp, "x", cell_tags("k1", me))
    runs.log_metrics(uri, second, {schema.METRIC_VAL_TOP1: 0.375})
    runs.finish(uri, second, runs.FINISHED)
    states = runs.cell_states(uri, exp, ["k1", "k9"])
    assert list(states) == ["k1", "k9"]
    assert states["k1"].status == runs.FINISHED
    assert states["k1"].run_id == second
    assert states["k1"].val_top1 == 0.375
    assert states["k9"].status == "MISSING" and states["k9"].run_id is None


def test_claim_run_skips_resumes_or_creates_with_the_killed_bookkeeping(
    store: tuple[str, str],
) -> None:
    uri, exp = store
    me = runs.Owner.current()

    def gone(run: runs.RunInfo) -> str | None:
        return None if runs.owner_alive(run.tags) else "owner gone at relaunch"

    assert claim_run(uri, None, gone) == Claim(CREATE)
    done = runs.create(uri, exp, "done", cell_tags("d", me))
    runs.finish(uri, done, runs.FINISHED)
    skipped = claim_run(uri, runs.get(uri, done), gone)
    assert (skipped.action, skipped.killed) == (SKIP, None)
    assert runs.get(uri, done).status == runs.FINISHED

    live = runs.create(uri, exp, "live", cell_tags("l", me))
    assert claim_run(uri, runs.get(uri, live), gone).action == SKIP
    assert runs.get(uri, live).status == runs.RUNNING and runs.TAG_RECONCILED not in (
        runs.get(uri, live).tags
    )

    stale = runs.create(uri, exp, "stale", cell_tags("s", dead_owner()))
    runs.log_text(uri, stale, "traceback.txt", "Traceback: boom\n")
    claim = claim_run(
        uri, runs.get(uri, stale), gone, archive=("traceback.txt",), tags={"mnv1.job": "7"}
    )
    assert (claim.action, claim.killed) == (RESUME, "owner gone at relaunch")
    assert claim.run is not None and claim.run.status == runs.RUNNING  # as it was found
    resumed = runs.get(uri, stale)
    assert resumed.status == runs.RUNNING
    assert resumed.tags[runs.TAG_RECONCILED] == "owner gone at relaunch"
    assert resumed.tags[runs.TAG_ATTEMPT] == "2" and resumed.tags["mnv1.job"] == "7"
    assert resumed.tags[schema.TAG_PID] == str(me.pid)
    assert runs.artifact_names(uri, stale) == ["attempt1"]

    failed = runs.create(uri, exp, "failed", cell_tags("f", me))
    runs.finish(uri, failed, runs.FAILED)
    again = claim_run(uri, runs.get(uri, failed), gone)
    assert (again.action, again.killed) == (RESUME, None)
    assert runs.get(uri, failed).status == runs.RUNNING
    assert runs.TAG_RECONCILED not in runs.get(uri, failed).tags
