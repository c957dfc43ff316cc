"""Strategy choice, multi-worker refusal, global-batch rule and the bootstrap ordering guard."""

from __future__ import annotations

import json

import pytest

from mnv1.config import DistributeConfig
from mnv1.training.strategy import (
    MultiWorkerError,
    StrategyPlan,
    check_global_batch,
    check_tf_config,
    make_strategy,
    normalise_device,
    plan_strategy,
)

CPU1 = ["/device:CPU:0"]
CPU2 = ["/device:CPU:0", "/device:CPU:1"]
GPU2 = ["/device:GPU:0", "/device:GPU:1"]


@pytest.mark.parametrize(
    ("cfg", "gpus", "cpus", "expected"),
    [
        (DistributeConfig(), [], CPU1, StrategyPlan("one_device", ("/device:CPU:0",))),
        (DistributeConfig(cpu_replicas=2), [], CPU2, StrategyPlan("mirrored", tuple(CPU2))),
        (DistributeConfig(), GPU2, CPU1, StrategyPlan("mirrored", tuple(GPU2))),
        (DistributeConfig(), GPU2[:1], CPU1, StrategyPlan("mirrored", ("/device:GPU:0",))),
        (DistributeConfig(strategy="mirrored"), [], CPU1, StrategyPlan("mirrored", tuple(CPU1))),
        (
            DistributeConfig(strategy="one_device"),
            GPU2,
            CPU1,
            StrategyPlan("one_device", ("/device:GPU:0",)),
        ),
        (
            DistributeConfig(strategy="mirrored", devices=["gpu:1", "/GPU:0"]),
            GPU2,
            CPU1,
            StrategyPlan("mirrored", ("/device:GPU:1", "/device:GPU:0")),
        ),
        (
            DistributeConfig(strategy="auto", devices=["cpu:1"], cpu_replicas=2),
            [],
            CPU2,
            StrategyPlan("one_device", ("/device:CPU:1",)),
        ),
    ],
)
def test_plan_strategy(cfg, gpus, cpus, expected):
    assert plan_strategy(cfg, gpus, cpus) == expected


def test_tensorflow_device_names_are_normalised():
    assert normalise_device("/job:localhost/replica:0/task:0/device:GPU:3") == "/device:GPU:3"
    assert normalise_device("cpu:0") == "/device:CPU:0"
    with pytest.raises(ValueError, match="'tpu:0' is not a device name"):
        normalise_device("tpu:0")


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (DistributeConfig(strategy="parameter_server"), "one of auto, mirrored, one_device"),
        (DistributeConfig(cpu_replicas=4), "cpu_replicas=4 but TensorFlow has 2 logical CPU"),
        (DistributeConfig(devices=["gpu:0"]), "names /device:GPU:0, which this process"),
        (
            DistributeConfig(strategy="one_device", devices=["cpu:0", "cpu:1"]),
            "one_device takes exactly one device",
        ),
        (DistributeConfig(devices=["cpu:0", "/cpu:0"]), "must not list a device twice"),
    ],
)
def test_plan_strategy_rejects(cfg, message):
    with pytest.raises(ValueError, match=message):
        plan_strategy(cfg, [], CPU2)


def test_multi_worker_tf_config_is_refused_with_the_reason():
    cluster = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}
    with pytest.raises(MultiWorkerError, match=r"2 workers.*keras-team/keras#20585"):
        check_tf_config({"TF_CONFIG": json.dumps(cluster)})
    chief_and_worker = {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}}
    with pytest.raises(MultiWorkerError, match="2 workers"):
        check_tf_config({"TF_CONFIG": json.dumps(chief_and_worker)})


def test_single_worker_or_absent_tf_config_is_accepted():
    check_tf_config({})
    check_tf_config({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}})})
    with pytest.raises(ValueError, match="not a valid cluster spec"):
        check_tf_config({"TF_CONFIG": "{not json"})


def test_make_strategy_refuses_multi_worker_before_touching_devices(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1", "c:1"]}}))
    with pytest.raises(MultiWorkerError, match="3 workers"):
        make_strategy(DistributeConfig())


def test_global_batch_must_divide_by_replicas():
    assert check_global_batch(16, 2) == 8
    with pytest.raises(ValueError) as err:
        check_global_batch(15, 2)
    message = str(err.value)
    assert "train.batch_size=15" in message
    assert "2 replicas" in message
    assert "14 or 16" in message
    with pytest.raises(ValueError, match=r"train.batch_size=0: must be an integer >= 1"):
        check_global_batch(0, 1)


def test_make_strategy_one_device_on_cpu():
    strategy = make_strategy(DistributeConfig())
    assert strategy.num_replicas_in_sync == 1
    assert type(strategy).__name__ == "OneDeviceStrategy"


def test_bootstrap_after_tensorflow_initialised_is_a_clear_error():
    import tensorflow as tf

    from mnv1.config import TrainConfig
    from mnv1.training.bootstrap import BootstrapError, bootstrap, tf_initialised

    tf.constant(1.0)  # initialises the devices, as any earlier test in this process may have
    assert tf_initialised()
    with pytest.raises(BootstrapError, match="must run before TensorFlow initialises"):
        bootstrap(DistributeConfig(cpu_replicas=2), TrainConfig())


def test_bootstrap_rejects_bad_values_first():
    from mnv1.config import TrainConfig
    from mnv1.training.bootstrap import bootstrap

    with pytest.raises(ValueError, match=r"distribute.cpu_replicas=0: must be an integer >= 1"):
        bootstrap(DistributeConfig(cpu_replicas=0), TrainConfig())


def test_fresh_process_imports_without_initialising_then_bootstraps_two_cpu_replicas():
    import subprocess
    import sys

    from train_support import child_env

    script = """
import mnv1, mnv1.training.run, mnv1.training.worker
from mnv1.training.bootstrap import bootstrap, tf_initialised
from mnv1.config import DistributeConfig, TrainConfig
from mnv1.training.strategy import make_strategy
assert not tf_initialised(), "importing mnv1.training.run initialised TensorFlow"
cfg = DistributeConfig(cpu_replicas=2)
bootstrap(cfg, TrainConfig())
strategy = make_strategy(cfg)
print(type(strategy).__name__, strategy.num_replicas_in_sync)
"""
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=child_env(), timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split()[-2:] == ["MirroredStrategy", "2"]
