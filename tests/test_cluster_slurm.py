"""The smoke study on a real one-node SLURM cluster (slurmctld, slurmd, munged on loopback).

The cluster is set up by ``tests/clusters/slurm_local.py`` (readable as a recipe) and stopped
whatever happens. SLURM here has no accounting daemon (slurmdbd needs a MySQL server), so
``sacct`` has nothing to show: the jobs' final states come from the job completion log
(``JobCompType=jobcomp/filetxt``), the same record ``sacct`` would read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sweep_support import REPO, Workspace, wait_until_held

sys.path.insert(0, str(REPO / "tests" / "clusters"))
from slurm_local import SlurmCluster, local_slurm, missing_programs

SMOKE_CELLS = ["mnv1_a0.25_r32", "mnv1_a0.25_r48", "mnv1_a0.5_r32", "mnv1_a0.5_r48"]
# One CPU and a little memory per job: the node has 2 CPUs, so two cells train at once.
SLURM_ARGS = (
    "hydra/launcher=slurm",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
    "hydra.launcher.timeout_min=20",
)
# Three epochs of the smoke study's two steps: the held cell is killed after epoch 1 and resumes
# to epoch 3. The hold (tests/failure_injection) places the kill, so no epoch needs to be long.
THREE_EPOCHS = ("train.epochs=3",)


@pytest.fixture
def slurm(tmp_path: Path) -> Iterator[SlurmCluster]:
    missing = missing_programs()
    assert not missing, f"{missing} not installed: .ci/run installs slurm-wlm and munge"
    with local_slurm(tmp_path / "slurm") as cluster:
        yield cluster


def job_logs(ws: Workspace) -> str:
    """Every cell's Hydra job log (written on the node, in the shared launch directory)."""
    return "".join(p.read_text() for p in sorted((ws.root / "multirun").glob("**/mnv1.log")))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_smoke_sweep_on_slurm_scancel_then_resume(slurm: SlurmCluster, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "launch", extra_env=slurm.env())
    # The first cell to finish epoch 1 waits there (tests/failure_injection) until it is
    # cancelled: the scancel lands mid-cell whatever the machine's speed (polling for a checkpoint
    # raced training, and a small cell could finish every epoch before the scancel).
    marker = tmp_path / "held"
    ws.extra_env.update(ws.holding_env(marker))
    ws.root.mkdir()
    args = ("-m", "experiment=smoke", *THREE_EPOCHS, *SLURM_ARGS)
    proc, log = ws.launch_logged(*args)
    try:
        key = wait_until_held(marker, proc, log)
        [victim] = [r for r in ws.children().values() if r.data.tags["mnv1.run_key"] == key]
        job = victim.data.tags["mnv1.scheduler_job"]
        assert job.startswith("slurm:")
        slurm.run("scancel", job.removeprefix("slurm:"))
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = log.read_text()
    assert proc.returncode == 1, out  # one cell did not finish
    assert "1 of 4 cells did not finish" in out

    # Each cell ran as an array task of one SLURM job.
    children = ws.children()
    assert sorted(children) == SMOKE_CELLS
    jobs = {r.data.tags["mnv1.scheduler_job"].removeprefix("slurm:") for r in children.values()}
    assert len(jobs) == 4 and len({j.split("_")[0] for j in jobs}) == 1
    killed = children[victim.info.run_name]
    # Not RUNNING. scancel sends SIGTERM, then SIGKILL KillWait (5 s) later: the cell's own
    # process normally sees its worker die and ends the run KILLED; when SIGKILL comes first,
    # the launcher settles the dead job (both paths end here; the second is what the Ray test
    # and test_cluster_launchers.py pin).
    assert killed.info.status == "KILLED"
    settled = f"cluster job {job} ended CANCELLED; run {killed.info.run_id} marked KILLED"
    if settled in out:
        assert killed.data.tags["mnv1.reconciled"] == f"cluster job {job} ended CANCELLED"
    else:
        assert killed.data.tags["mnv1.exit"] == "signal 15 (SIGTERM)"
    killed_epochs = ws.steps(killed, "val_top1")
    assert killed_epochs == [1]
    others = [r for r in children.values() if r.info.run_id != killed.info.run_id]
    assert {r.info.status for r in others} == {"FINISHED"}
    [parent] = ws.parents()
    assert parent.info.status == "FAILED"
    assert parent.data.tags["mnv1.launcher"] == "SlurmLauncher"

    again = ws.train(*args, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    # The cells decide inside their jobs: their decisions are in the jobs' logs.
    decisions = job_logs(ws)
    assert f"resuming run {killed.info.run_id} (was KILLED)" in decisions
    assert decisions.count(": skipped, run ") == 3
    children = ws.children()
    assert len(ws.runs()) == 5  # the same parent and the same four cells
    resumed = children[victim.info.run_name]
    assert resumed.info.run_id == killed.info.run_id
    assert resumed.info.status == "FINISHED"
    # From its last checkpoint: the epochs before it are not trained again.
    assert resumed.data.tags["mnv1.resumed_from_epoch"] == "1"
    assert resumed.data.tags["mnv1.attempt"] == "2"
    assert sorted(set(ws.steps(resumed, "val_top1"))) == [1, 2, 3]
    for run in children.values():
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert 0.0 <= run.data.metrics["val_top1"] <= 1.0
    [parent] = ws.parents()
    assert parent.info.status == "FINISHED" and parent.data.tags["mnv1.launches"] == "2"
    assert (ws.root / "reports" / "smoke" / "report.md").exists()

    # What sacct would show with an accounting daemon: the first launch's four jobs (one
    # cancelled) and the relaunch's four (three cells find their run FINISHED and skip).
    states = slurm.completed_jobs()
    assert sorted(states.values()) == ["CANCELLED"] + ["COMPLETED"] * 7, states
