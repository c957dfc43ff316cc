"""What the host must offer is checked before anything starts (``mnv1.training.host``): a
multi-worker ``TF_CONFIG`` or more GPUs per run than this host shows stop ``mnv1-train`` with
exit 2 and the worker's own message, before any MLflow store, run or directory exists."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from sweep_support import Workspace

from mnv1.config import DistributeConfig, RunConfig
from mnv1.training.host import grid_host_problems, host_problems
from mnv1.training.strategy import MultiWorkerError, check_tf_config

TWO_WORKERS = json.dumps(
    {
        "cluster": {"worker": ["host1:2222", "host2:2222"]},
        "task": {"type": "worker", "index": 0},
    }
)


def _with(**distribute: object) -> RunConfig:
    cfg = RunConfig()
    return replace(cfg, distribute=replace(DistributeConfig(), **distribute))  # type: ignore[arg-type]


def _worker_message(environ: dict[str, str]) -> str:
    with pytest.raises(ValueError) as err:
        check_tf_config(environ)
    return str(err.value)


def test_a_multi_worker_tf_config_is_the_workers_own_message() -> None:
    env = {"TF_CONFIG": TWO_WORKERS}
    with pytest.raises(
        MultiWorkerError, match=r"TF_CONFIG names 2 workers.*keras-team/keras#20585"
    ):
        check_tf_config(env)
    message = _worker_message(env)
    assert host_problems(RunConfig(), [], env) == [message]
    # One worker (or a chief alone) is one host: fine.
    one = json.dumps({"cluster": {"chief": ["host1:2222"]}, "task": {"type": "chief"}})
    assert host_problems(RunConfig(), [], {"TF_CONFIG": one}) == []
    assert host_problems(RunConfig(), [], {}) == []
    garbled = {"TF_CONFIG": "{not json"}
    assert host_problems(RunConfig(), None, garbled) == [_worker_message(garbled)]


def test_gpus_per_run_above_the_visible_gpus_is_refused_where_cells_train_here() -> None:
    cfg = _with(gpus_per_run=2)
    assert host_problems(cfg, ["0"], {}) == [
        "distribute.gpus_per_run=2: this host shows 1 GPU(s) (0) to the cells it launches; "
        "lower it, set it to 0 to train on the CPU, or null to use every visible GPU"
    ]
    assert host_problems(cfg, [], {}) == [
        "distribute.gpus_per_run=2: this host shows 0 GPU(s) (none) to the cells it launches; "
        "lower it, set it to 0 to train on the CPU, or null to use every visible GPU"
    ]
    assert host_problems(cfg, ["0", "1"], {}) == []
    assert host_problems(_with(gpus_per_run=0), [], {}) == []
    # Cells that train on other machines (SLURM, Ray): their GPUs are not known here.
    assert host_problems(cfg, None, {}) == []
    # A bad value is its rule's to report, not this check's.
    assert host_problems(_with(gpus_per_run=-1), [], {}) == []


def test_devices_naming_a_gpu_no_cell_will_see_are_refused() -> None:
    cfg = _with(devices=["/gpu:0", "gpu:2"])
    assert host_problems(cfg, ["0", "1"], {}) == [
        "distribute.devices=['/gpu:0', 'gpu:2']: gpu:2 is not among the 2 GPU(s) a cell will see "
        "(this host's 2 GPU(s) (0, 1), numbered from 0)"
    ]
    assert host_problems(cfg, ["0", "1", "2"], {}) == []
    # Through a GPU slot a cell sees gpus_per_run GPUs, renumbered from 0.
    sliced = _with(devices=["gpu:1"], gpus_per_run=1)
    assert host_problems(sliced, ["0", "1", "2", "3"], {}) == [
        "distribute.devices=['gpu:1']: gpu:1 is not among the 1 GPU(s) a cell will see "
        "(distribute.gpus_per_run=1 GPU(s), numbered from 0)"
    ]
    assert host_problems(_with(devices=["cpu:0"]), [], {}) == []


def test_a_grid_reports_each_host_problem_once() -> None:
    cells = [RunConfig(), _with(gpus_per_run=1), _with(gpus_per_run=1)]
    problems = grid_host_problems(cells, [], {"TF_CONFIG": TWO_WORKERS})
    assert len(problems) == 2
    assert "keras-team/keras#20585" in problems[0]
    assert problems[1].startswith("distribute.gpus_per_run=1: this host shows 0 GPU(s)")


def _refused(ws: Workspace, *args: str, env: dict[str, str]) -> str:
    done = ws.train(*args, env=env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "this host cannot train the" in done.stderr and "nothing was started" in done.stderr
    # No store (mlflow.db), so no run and no parent; no Hydra output, checkpoint or dataset.
    assert sorted(p.name for p in ws.root.iterdir()) == []
    return done.stderr


@pytest.mark.timeout(120)
def test_a_multi_worker_tf_config_stops_mnv1_train_before_anything_exists(ws: Workspace) -> None:
    message = _worker_message({"TF_CONFIG": TWO_WORKERS})
    for args in (("-m", "experiment=smoke"), ("experiment=smoke",)):
        stderr = _refused(ws, *args, env={"TF_CONFIG": TWO_WORKERS})
        assert f"  - {message}\n" in stderr


@pytest.mark.timeout(120)
def test_more_gpus_per_run_than_the_host_shows_stops_a_local_sweep(ws: Workspace) -> None:
    # The workspace hides every GPU (CUDA_VISIBLE_DEVICES=""), as a CPU-only host shows none.
    stderr = _refused(ws, "-m", "experiment=smoke", "distribute.gpus_per_run=1", env={})
    assert "distribute.gpus_per_run=1: this host shows 0 GPU(s) (none)" in stderr


@pytest.mark.timeout(120)
def test_mnv1_tune_refuses_a_multi_worker_tf_config_before_any_trial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mnv1.cli import tune

    monkeypatch.setenv("TF_CONFIG", TWO_WORKERS)
    found = tune.plan(["experiment=smoke", "tune.cells=[mnv1_a0.25_r32]"])
    assert found == [_worker_message({"TF_CONFIG": TWO_WORKERS})]
