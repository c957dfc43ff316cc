"""End-to-end training runs, each in a child process with two CPU replicas (MirroredStrategy).

Each run is its own process (``tests/train_support.py`` → ``mnv1.training.worker.run``):
``bootstrap``
must split the CPU before TensorFlow initialises, and MirroredStrategy runs of different shapes
cannot share a process (tensorflow/tensorflow#61314).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from train_support import child_command, child_env, run_child, tiny_config

from mnv1.runlog import JsonlRunLog

# Each test starts one or two training processes (two for the module-scoped pair).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# A short run that learns the quadrant task: 4 epochs of 12 steps of 16 images (8 per replica).
# At 48 px the last feature map is 2×2, so training-mode BatchNorm is not all noise.
LEARN = {"learning_rate": 0.05, "epochs": 4, "deterministic": True, "seed": 3}
LEARN_MODEL = {"resolution": 48}


def losses(run_log: JsonlRunLog, key: str = "loss") -> list[tuple[int | None, float]]:
    return run_log.metric_history(key)


@pytest.fixture(scope="module")
def deterministic_pair(tmp_path_factory):
    """The same seeded, deterministic run twice, in two processes.

    Both processes run at once: most of each one's time is TensorFlow's start-up and tracing,
    which two cores overlap, and running side by side is also a stricter determinism check
    than one after the other (op determinism must not depend on what else the host is doing).
    """
    dirs = [tmp_path_factory.mktemp(name) for name in ("first", "second")]

    def launch(tmp: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
        return run_child(tiny_config(tmp, model=LEARN_MODEL, train=LEARN), tmp, train=192, val=64)

    with ThreadPoolExecutor(max_workers=2) as pool:
        finished = list(pool.map(launch, dirs))
    runs = []
    for proc, jsonl in finished:
        assert proc.returncode == 0, proc.stderr[-4000:]
        runs.append(JsonlRunLog(jsonl))
    return runs


def test_two_cpu_replicas_train_and_the_loss_falls(deterministic_pair):
    run = deterministic_pair[0]
    tags = run.tags()
    assert tags["mnv1.replicas"] == "2"
    assert tags["mnv1.strategy"] == "MirroredStrategy"
    assert tags["mnv1.devices"].count("CPU") == 2
    assert tags["mnv1.per_replica_batch"] == "8"
    assert tags["mnv1.bn_batch_stats"] == "per_replica"
    history = losses(run)
    assert [step for step, _ in history] == [1, 2, 3, 4]
    assert history[-1][1] < history[0][1] - 0.5


def test_short_run_validates_as_well_as_it_trains(deterministic_pair):
    run = deterministic_pair[0]
    train_top1 = run.metric_history("top1")[-1][1]
    final_val_top1 = run.metric_history("val_top1")[-1]
    assert final_val_top1[0] is None  # the final value, logged without a step
    assert train_top1 > 0.8, "the run did not learn the task"
    assert abs(final_val_top1[1] - train_top1) <= 0.05
    assert run.metric_history("val_examples") == [(None, 64.0)]


def test_keras_default_batchnorm_would_validate_near_chance(tmp_path):
    """The control: the same run with Keras's fixed momentum 0.99 and no recalibration.

    Its moving statistics still hold most of their initial values after 48 steps, so it
    validates near chance (4 classes) while training at the same accuracy: what the defaults
    above prevent.
    """
    model = {**LEARN_MODEL, "bn_momentum": 0.99}
    cfg = tiny_config(tmp_path, model=model, train={**LEARN, "bn_recalibration_batches": 0})
    proc, jsonl = run_child(cfg, tmp_path, train=192, val=64)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = JsonlRunLog(jsonl)
    train_top1 = run.metric_history("top1")[-1][1]
    assert train_top1 > 0.8
    assert run.metric_history("val_top1")[-1][1] < train_top1 - 0.3
    assert run.tags()["mnv1.bn_momentum_source"] == "config"


def test_same_seed_and_determinism_give_identical_losses(deterministic_pair):
    first, second = deterministic_pair
    for key in ("loss", "top1", "val_loss", "val_top1"):
        assert losses(first, key) == losses(second, key), key


def test_multi_worker_tf_config_is_refused(tmp_path):
    tf_config = {"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"index": 0}}
    proc, jsonl = run_child(
        tiny_config(tmp_path), tmp_path, env={"TF_CONFIG": json.dumps(tf_config)}
    )
    assert proc.returncode == 1
    assert "MultiWorkerError: TF_CONFIG names 2 workers" in proc.stderr
    assert "keras-team/keras#20585" in proc.stderr
    run = JsonlRunLog(jsonl)
    assert "keras-team/keras#20585" in run.texts()["traceback.txt"]
    assert not run.metric_history("loss")


def test_batch_not_divisible_by_replicas_fails_before_training(tmp_path):
    proc, jsonl = run_child(tiny_config(tmp_path, train={"batch_size": 15}), tmp_path)
    assert proc.returncode == 1
    assert (
        "train.batch_size=15: the global batch must divide evenly by the 2 replicas of this run "
        "(e.g. 14 or 16)" in proc.stderr
    )
    run = JsonlRunLog(jsonl)
    assert not run.metric_history("loss")
    assert not run.metric_history("mult_adds")  # refused before the model was built
    assert not (tmp_path / "checkpoints").exists()


def test_nan_loss_stops_the_run_with_its_reason(tmp_path):
    proc, jsonl = run_child(tiny_config(tmp_path), tmp_path, nan=True)
    assert proc.returncode == 1
    assert "TrainingDiverged: training loss became nan at epoch 1, step 1" in proc.stderr
    run = JsonlRunLog(jsonl)
    assert "became nan" in run.texts()["traceback.txt"]
    assert not run.metric_history("loss")


def test_sigkill_after_the_first_epoch_resumes_and_finishes_the_epoch_count(tmp_path):
    cfg = tiny_config(tmp_path, train={"epochs": 4})
    config = tmp_path / "run.json"
    config.write_text(json.dumps(cfg))
    jsonl = tmp_path / "run.jsonl"
    command = child_command(config, jsonl, train=128, val=32)
    child = subprocess.Popen(
        command, env=child_env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    checkpoints = None
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and child.poll() is None:
            pointers = list((tmp_path / "checkpoints").glob("*/latest.json"))
            if pointers and json.loads(pointers[0].read_text())["epochs_done"] >= 1:
                os.kill(child.pid, signal.SIGKILL)
                checkpoints = pointers[0].parent
                break
            time.sleep(0.02)
    finally:
        if child.poll() is None and checkpoints is None:
            child.kill()
        _, stderr = child.communicate(timeout=60)
    assert checkpoints is not None, f"no checkpoint after epoch 1: {stderr.decode()[-3000:]}"
    assert child.returncode == -signal.SIGKILL
    killed_at = json.loads((checkpoints / "latest.json").read_text())["epochs_done"]
    assert 1 <= killed_at < 4

    proc = subprocess.run(command, env=child_env(), cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = JsonlRunLog(jsonl)
    assert run.tags()["mnv1.resumed_from_epoch"] == str(killed_at)
    for key in ("loss", "top1", "val_loss", "val_top1", "val_top5"):
        assert run.logged_metric_steps(key) == [1, 2, 3, 4], key
    assert json.loads((checkpoints / "latest.json").read_text())["epochs_done"] == 4


def test_worker_command_trains_on_the_data_layer_and_counts_every_validation_example(tmp_path):
    """``python -m mnv1.training.worker`` end to end: the embedded synthetic TFDS set, two
    replicas. 65 examples each way, global batch 16: training drops the remainder (4 steps), while
    validation evaluates all 65, the last batch padded and the padding left out of the counts."""
    cfg = tiny_config(tmp_path, train={"epochs": 2})
    cfg["data"].update(
        data_dir=str(tmp_path / "tfds"),
        synthetic={"train_size": 65, "val_size": 65, "image_size": 48, "seed": 0},
    )
    config = tmp_path / "cell.json"
    config.write_text(json.dumps(cfg))
    proc = subprocess.run(
        [sys.executable, "-m", "mnv1.training.worker", "--config", str(config)],
        env=child_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "mnv1.training.worker: finished: val_top1" in proc.stdout
    run = JsonlRunLog(tmp_path / "cell.jsonl")  # the default run_log: beside the config
    tags = run.tags()
    assert tags["mnv1.data.name"] == "mnv1_synthetic/s0_tr65_va65_c10_px48"
    assert tags["mnv1.data.split.validation"] == "65"
    assert tags["mnv1.replicas"] == "2"
    assert tags["mnv1.steps_per_epoch"] == "4"  # 65 // 16: the remainder is dropped
    assert run.logged_metric_steps("val_top1") == [1, 2]
    assert run.metric_history("val_examples") == [(None, 65.0)]
    for _, top1 in run.metric_history("val_top1"):
        assert abs(top1 * 65 - round(top1 * 65)) < 1e-4  # a count of the 65, padding excluded
    assert "ran out of data" not in proc.stderr  # neither training nor evaluation input ends
