"""Cluster launchers without a cluster: the GPU request each one generates, the scheduler-job
bookkeeping that settles dead jobs and resumes requeued ones, and the fast failure of a sweep
whose cluster is down."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from hydra.core.utils import setup_globals
from hydra.types import RunMode
from mnv1.tracking import runs, schema
from mnv1.tracking.store import ensure_experiment
from omegaconf import DictConfig, OmegaConf
from sweep_support import REPO, Workspace

from mnv1.hydra_app.grid import make_hydra
from mnv1.launchers import cluster_jobs
from mnv1.launchers.ray import RayClusterLauncher
from mnv1.launchers.slurm import SlurmLauncher
from mnv1.sweep.orchestrate import SweepRef, _open_run
from mnv1.sweep.scheduler import TAG_SCHEDULER_JOB, current_job

sys.path.insert(0, str(REPO / "tests" / "clusters"))
from ray_local import free_port
from slurm_local import slurm_conf


def compose(*overrides: str) -> DictConfig:
    hydra = make_hydra()
    setup_globals()
    return hydra.compose_config(
        config_name="config",
        overrides=[*overrides, "hydra.mode=MULTIRUN"],
        run_mode=RunMode.MULTIRUN,
        with_log_configuration=False,
    )


def sbatch_text(*overrides: str) -> str:
    cfg = compose("experiment=smoke", "hydra/launcher=slurm", *overrides)
    params: dict[str, Any] = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)  # type: ignore[assignment]
    params.pop("_target_")
    launcher = SlurmLauncher(**params)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)  # type: ignore[arg-type]
    inner = launcher.executor()._executor
    return str(inner._make_submission_file_text("python -m x", "uid"))


def sbatch_gpu_lines(*overrides: str) -> list[str]:
    return [ln for ln in sbatch_text(*overrides).splitlines() if "gpu" in ln or "gres" in ln]


def test_slurm_job_asks_for_gpus_per_run() -> None:
    assert sbatch_gpu_lines("distribute.gpus_per_run=2") == ["#SBATCH --gpus-per-task=2"]
    assert sbatch_gpu_lines("distribute=gpu_slots") == ["#SBATCH --gpus-per-task=1"]
    # No GPU request: unset or 0 (the run hides its GPUs) asks for none.
    assert sbatch_gpu_lines() == []
    assert sbatch_gpu_lines("distribute.gpus_per_run=0") == []
    # A form the site wants, set on the launcher, wins.
    gres = sbatch_gpu_lines("distribute.gpus_per_run=2", "hydra.launcher.gres=gpu:a100:2")
    assert gres == ["#SBATCH --gres=gpu:a100:2"]
    text = sbatch_text("hydra.launcher.cpus_per_task=3", "hydra.launcher.partition=gpu")
    assert "#SBATCH --cpus-per-task=3" in text and "#SBATCH --partition=gpu" in text
    assert "#SBATCH --signal=USR2@120" in text


def ray_options(*overrides: str) -> dict[str, Any]:
    cfg = compose("experiment=smoke", "hydra/launcher=ray_cluster", *overrides)
    launcher = RayClusterLauncher(ray=cfg.hydra.launcher.ray)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)  # type: ignore[arg-type]
    return launcher.remote_options


def test_ray_task_asks_for_gpus_per_run() -> None:
    assert ray_options("distribute.gpus_per_run=2") == {
        "num_cpus": 4,
        "num_gpus": 2,
        "max_retries": 0,
    }
    assert ray_options()["num_gpus"] == 0
    assert (
        ray_options("distribute.gpus_per_run=2", "+hydra.launcher.ray.remote.num_gpus=4")[
            "num_gpus"
        ]
        == 4
    )


def test_current_job_names_the_slurm_array_task_or_ray_task() -> None:
    assert current_job({}) is None
    assert current_job({"SLURM_JOB_ID": "41"}) == "slurm:41"
    array = {"SLURM_JOB_ID": "44", "SLURM_ARRAY_JOB_ID": "41", "SLURM_ARRAY_TASK_ID": "3"}
    assert current_job(array) == "slurm:41_3"  # as squeue, scancel and submitit name it
    assert current_job({**array, "MNV1_SCHEDULER_JOB": "ray:abc"}) == "ray:abc"


@pytest.fixture
def store(sqlite_uri: str) -> Iterator[tuple[str, str]]:
    uri = sqlite_uri
    experiment_id = ensure_experiment(uri, "smoke")
    yield uri, experiment_id


def running_cell(uri: str, experiment_id: str, key: str, job: str) -> str:
    # Owned by this very process, so only the scheduler job can tell that it is dead.
    tags = {
        schema.TAG_KIND: schema.KIND_CELL,
        schema.TAG_RUN_KEY: key,
        TAG_SCHEDULER_JOB: job,
        **runs.Owner.current().tags(),
    }
    return runs.create(uri, experiment_id, key, tags)


def test_a_dead_jobs_runs_end_killed_and_the_sweep_goes_on(store: tuple[str, str]) -> None:
    uri, experiment_id = store
    sweep = SweepRef("parent", "sweepkey", experiment_id, uri)
    # The launcher finds the sweep in the job environment its sweeper set on the master config.
    master = OmegaConf.create({"hydra": {"job": {"env_set": sweep.env()}}})
    assert cluster_jobs.sweep_of(master) == sweep
    assert cluster_jobs.sweep_of(OmegaConf.create({"hydra": {"job": {"env_set": {}}}})) is None
    dead = running_cell(uri, experiment_id, "k1", "slurm:7_0")
    alive = running_cell(uri, experiment_id, "k2", "slurm:7_1")
    ret = cluster_jobs.settle_dead_job(
        ["model.alpha=0.25"], "slurm:7_0", "CANCELLED", cluster_jobs.sweep_of(master)
    )
    assert ret.return_value == "KILLED"  # a result, not an exception: the sweep reaches its end
    assert runs.get(uri, dead).status == "KILLED"
    assert runs.get(uri, dead).tags["mnv1.reconciled"] == "cluster job slurm:7_0 ended CANCELLED"
    assert runs.get(uri, alive).status == "RUNNING"


def test_a_requeued_job_resumes_its_own_run(
    store: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnv1.hydra_app.grid import check_command
    from mnv1.run_key import run_key

    uri, experiment_id = store
    cfg = check_command(["experiment=smoke"], multirun=True).cells[0].config
    key = run_key(cfg)
    run_id = running_cell(uri, experiment_id, key, "slurm:9_2")
    for var in ("MNV1_SCHEDULER_JOB", "SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID"):
        monkeypatch.delenv(var, raising=False)
    # Another job finds the run RUNNING under a live owner: it leaves it alone.
    monkeypatch.setenv("SLURM_JOB_ID", "12")
    other = _open_run(cfg, key, "cell", uri, experiment_id, None)
    assert (other.run_id, other.action, other.status) == (None, "skipped", "RUNNING")
    # The same job, requeued (same id), knows its earlier incarnation is gone: it resumes.
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "9")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    same = _open_run(cfg, key, "cell", uri, experiment_id, None)
    assert (same.run_id, same.action) == (run_id, "resumed")
    run = runs.get(uri, run_id)
    assert run.tags["mnv1.reconciled"].endswith(
        "(an earlier run of slurm:9_2) was gone when cell was relaunched"
    )
    assert run.tags["mnv1.attempt"] == "2" and run.tags[TAG_SCHEDULER_JOB] == "slurm:9_2"


def down_sweep(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    # The refusal must come before anything starts, not after MLflow's or the scheduler's
    # minutes of retries: a launch still running after 30 s fails the test (TimeoutExpired).
    return ws.train("-m", "experiment=smoke", *args, timeout=30)


def assert_nothing_started(ws: Workspace) -> None:
    # No store, no output directory, no dataset, no checkpoint: only what the test wrote.
    assert {p.name for p in ws.root.iterdir()} <= {"slurm.conf"}


def test_a_sweep_whose_slurm_controller_is_down_fails_fast(tmp_path: Path) -> None:
    # A configuration naming a controller on a port where nothing listens.
    conf = tmp_path / "slurm.conf"
    conf.write_text(slurm_conf(tmp_path, cpus=2, memory_mb=1000))
    ws = Workspace(tmp_path, extra_env={"SLURM_CONF": str(conf)})
    done = down_sweep(ws, "hydra/launcher=slurm")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "mnv1-train: hydra/launcher=slurm: the SLURM controller does not answer" in done.stderr
    assert "start slurmctld (and slurmd on the nodes)" in done.stderr
    assert "nothing was started" in done.stderr
    assert_nothing_started(ws)


def test_a_sweep_whose_ray_head_is_down_fails_fast(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    ws = Workspace(tmp_path, extra_env={"RAY_ADDRESS": f"127.0.0.1:{port}"})
    done = down_sweep(ws, "hydra/launcher=ray_cluster")
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"mnv1-train: hydra/launcher=ray_cluster: no Ray head answers at 127.0.0.1:{port} "
        "(Connection refused); start a head with `ray start --head --port PORT`"
    ) in done.stderr
    assert_nothing_started(ws)


CHILD = """
import os, time
from mnv1.worker_contract import die_with_orchestrator
assert die_with_orchestrator({"MNV1_ORCHESTRATOR_PID": str(os.getppid())})
print("armed", flush=True)
time.sleep(120)
"""
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
time.sleep(120)
"""


def test_a_worker_dies_with_its_orchestrator() -> None:
    # Killed outright (as a Ray worker or a SLURM step can be), the orchestrator cannot stop
    # its worker; the kernel does.
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    child = None
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        assert parent.stdout.readline().strip() == "armed"
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 20
        while child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the worker outlived its orchestrator"
            time.sleep(0.1)
    finally:
        parent.kill()
        parent.wait()
        if child is not None and child.is_running():
            child.kill()
