"""The smoke study on a real one-node Ray cluster (``ray start --head`` on loopback).

The cluster is set up by ``tests/clusters/ray_local.py`` and stopped whatever happens; the test
then checks that none of its processes is left.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from sweep_support import FAILURE_INJECTION, REPO, Workspace, wait_until_held

sys.path.insert(0, str(REPO / "tests" / "clusters"))
from ray_local import RayCluster, local_ray

SMOKE_CELLS = ["mnv1_a0.25_r32", "mnv1_a0.25_r48", "mnv1_a0.5_r32", "mnv1_a0.5_r48"]
# One CPU per task: the head offers 2, so two cells train at once.
RAY_ARGS = ("hydra/launcher=ray_cluster", "hydra.launcher.ray.remote.num_cpus=1")
# Three epochs of the smoke study's two steps: the held cell is killed after epoch 1 and resumes
# to epoch 3. The hold (tests/failure_injection) places the kill, so no epoch needs to be long.
THREE_EPOCHS = ("train.epochs=3",)


@pytest.fixture
def ray_cluster(tmp_path: Path) -> Iterator[RayCluster]:
    env = {
        "CUDA_VISIBLE_DEVICES": "",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        # Ray's workers inherit the environment of ``ray start``, not the launcher's: the first
        # cell to finish epoch 1 is held there (tests/failure_injection) until its worker is
        # killed, so the kill lands mid-cell whatever the machine's speed.
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(FAILURE_INJECTION), os.environ.get("PYTHONPATH")])
        ),
        "MNV1_TEST_HOLD_AFTER_EPOCH": "1",
        "MNV1_TEST_HOLD_MARKER": str(tmp_path / "held"),
    }
    with local_ray(cpus=2, env=env) as cluster:
        yield cluster
    assert cluster.processes() == []


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_smoke_sweep_on_ray_killed_worker_then_resume(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "launch", extra_env=ray_cluster.env())
    ws.root.mkdir()
    args = ("-m", "experiment=smoke", *THREE_EPOCHS, *RAY_ARGS)
    proc, log = ws.launch_logged(*args)
    try:
        key = wait_until_held(tmp_path / "held", proc, log)
        [victim] = [r for r in ws.children().values() if r.data.tags["mnv1.run_key"] == key]
        # The run's owner is the Ray worker process that runs the cell's task.
        worker = psutil.Process(int(victim.data.tags["mnv1.pid"]))
        assert worker.pid in ray_cluster.processes()
        training = worker.children(recursive=True)
        assert training, "the cell trains in a child process of the Ray worker"
        os.kill(worker.pid, signal.SIGKILL)
        # The training process dies with its Ray worker: no orphan trains on into a KILLED run.
        _, alive = psutil.wait_procs(training, timeout=30)
        assert alive == []
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    job = victim.data.tags["mnv1.scheduler_job"]
    assert job.startswith("ray:")
    assert proc.returncode == 1, out
    assert (
        f"cluster job {job} ended WorkerCrashedError; run {victim.info.run_id} marked KILLED" in out
    )
    assert "1 of 4 cells did not finish" in out

    children = ws.children()
    assert sorted(children) == SMOKE_CELLS
    killed = children[victim.info.run_name]
    assert killed.info.status == "KILLED"
    killed_epochs = ws.steps(killed, "val_top1")
    assert killed_epochs == [1]
    others = [r for r in children.values() if r.info.run_id != killed.info.run_id]
    assert {r.info.status for r in others} == {"FINISHED"}
    assert len({r.data.tags["mnv1.scheduler_job"] for r in children.values()}) == 4
    [parent] = ws.parents()
    assert parent.info.status == "FAILED"
    assert parent.data.tags["mnv1.launcher"] == "RayClusterLauncher"

    again = ws.train(*args, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming run {killed.info.run_id} (was KILLED)" in again.stdout
    assert again.stdout.count(": skipped, run ") == 3
    assert len(ws.runs()) == 5
    children = ws.children()
    resumed = children[victim.info.run_name]
    assert resumed.info.run_id == killed.info.run_id and resumed.info.status == "FINISHED"
    assert resumed.data.tags["mnv1.resumed_from_epoch"] == "1"
    assert resumed.data.tags["mnv1.attempt"] == "2"
    assert sorted(set(ws.steps(resumed, "val_top1"))) == [1, 2, 3]
    for run in children.values():
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
    [parent] = ws.parents()
    assert parent.info.status == "FINISHED" and parent.data.tags["mnv1.launches"] == "2"
    assert (ws.root / "reports" / "smoke" / "report.md").exists()
