"""The pieces of a training run, each on its own: evaluation padding, BatchNorm statistics,
checkpoints, callbacks, the JSON-lines run log and the worker's command line."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from train_support import make_datasets

from mnv1.config import RunConfig
from mnv1.costs import count_costs
from mnv1.model import build_mobilenet_v1
from mnv1.runlog import JsonlRunLog, MemoryRunLog
from mnv1.training.batchnorm import BatchNormStats
from mnv1.training.callbacks import (
    EpochMetrics,
    IncompleteEvaluation,
    StopOnNaN,
    Throughput,
    TrainingDiverged,
    ValidationCount,
)
from mnv1.training.checkpoint import CheckpointState, CheckpointStore
from mnv1.training.run import cost_table, recalibration_data, training_data, validation_data
from mnv1.training.worker import load_config, main, make_run_log


def test_validation_pads_the_short_batch_with_zero_weights():
    data = make_datasets(train_count=16, val_count=65, resolution=32, global_batch=16)
    batches = list(validation_data(data.val, 65, 16, data.num_classes))
    assert len(batches) == 5
    assert all(images.shape == (16, 32, 32, 3) for images, _, _ in batches)
    weights = np.concatenate([w.numpy() for _, _, w in batches])
    assert weights.sum() == 65
    assert weights[-16:].tolist() == [1.0] + [0.0] * 15
    labels = np.concatenate([y.numpy() for _, y, _ in batches])
    expected = np.concatenate([y.numpy() for _, y in data.val])
    assert labels[:65].argmax(axis=1).tolist() == expected.tolist()
    assert labels[65:].sum() == 0 and np.all(labels[:65].sum(axis=1) == 1)
    last_images = batches[-1][0].numpy()
    assert np.all(last_images[1:] == 0)


def test_validation_rebatches_whatever_batch_the_data_layer_chose():
    data = make_datasets(train_count=16, val_count=10, resolution=32, global_batch=3)
    batches = list(validation_data(data.val, 10, 4, data.num_classes))
    assert [float(w.numpy().sum()) for _, _, w in batches] == [4.0, 4.0, 2.0]


def test_validation_cardinality_must_match_the_declared_examples():
    data = make_datasets(train_count=16, val_count=10, resolution=32, global_batch=4)
    with pytest.raises(tf.errors.FailedPreconditionError, match="expected to contain 5 elements"):
        list(validation_data(data.val, 20, 4, data.num_classes))


def test_training_data_is_one_hot_and_endless():
    data = make_datasets(train_count=32, val_count=8, resolution=32, global_batch=16)
    stream = iter(training_data(data.train, data.num_classes))
    batches = [next(stream) for _ in range(5)]  # 2 batches per pass: repeats without end
    assert all(y.shape == (16, 4) for _, y in batches)
    assert all(float(tf.reduce_sum(y)) == 16 for _, y in batches)


def _train_order(with_recalibration_pulls: bool) -> list[list[int]]:
    data = make_datasets(train_count=32, val_count=8, resolution=32, global_batch=8, seed=5)
    recal = iter(recalibration_data(data.train, 2))  # created first, as run_training does
    stream = iter(training_data(data.train, data.num_classes))
    order = []
    for _ in range(12):  # three passes of four batches
        order.append(np.argmax(next(stream)[1].numpy(), axis=1).tolist())
        if with_recalibration_pulls:
            for _ in range(3):  # many passes over the kept batches
                next(recal)
    return order


def test_recalibration_batches_never_disturb_the_training_order():
    # Iterators of one shuffled pipeline share its seed generator; the recalibration stream
    # draws from it once, when created, so the training stream's passes stay the same.
    assert _train_order(True) == _train_order(False)


def test_recalibration_data_keeps_the_same_batches():
    data = make_datasets(train_count=32, val_count=8, resolution=32, global_batch=8)
    stream = iter(recalibration_data(data.train, 2))
    first = [next(stream).numpy() for _ in range(2)]
    again = [next(stream).numpy() for _ in range(2)]
    assert first[0].shape == (8, 32, 32, 3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], first[1])


def _bn_model() -> keras.Model:
    inputs = keras.Input((2,))
    outputs = keras.layers.BatchNormalization(momentum=0.99, name="bn")(inputs)
    return keras.Model(inputs, outputs)


def test_recalibration_sets_the_plain_average_of_batch_statistics():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = _bn_model()
    x = np.array([[0, 1], [2, 3], [10, 20], [30, 60]], dtype="float32")
    ds = tf.data.Dataset.from_tensor_slices(x).batch(2).repeat()
    stats = BatchNormStats(model, strategy, iter(strategy.experimental_distribute_dataset(ds)), 2)
    stats.prepare_for_evaluation()
    bn = model.get_layer("bn")
    # Batch means (1, 2) and (20, 40); biased variances (1, 1) and (100, 400).
    np.testing.assert_allclose(bn.moving_mean.numpy(), [10.5, 21.0])
    np.testing.assert_allclose(bn.moving_variance.numpy(), [50.5, 200.5])
    assert bn.momentum == 0.99  # restored after the recalibration


def test_without_recalibration_the_statistics_are_left_alone_on_one_replica():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = _bn_model()
    BatchNormStats(model, strategy, None, 0).prepare_for_evaluation()
    np.testing.assert_array_equal(model.get_layer("bn").moving_mean.numpy(), [0.0, 0.0])


def _compiled_tiny_model() -> keras.Model:
    model = build_mobilenet_v1(alpha=0.25, resolution=32, num_classes=4)
    model.compile(optimizer=keras.optimizers.RMSprop(0.01), loss="categorical_crossentropy")
    return model


def test_checkpoint_round_trip_restores_weights_and_optimizer_state(tmp_path):
    model = _compiled_tiny_model()
    x = np.random.default_rng(0).normal(size=(8, 32, 32, 3)).astype("float32")
    y = np.eye(4, dtype="float32")[[0, 1, 2, 3, 0, 1, 2, 3]]
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # 2 steps
    store = CheckpointStore(tmp_path)
    for epoch in (1, 2, 3):
        store.save(model, CheckpointState(epoch, 0, 2))
    store.save(model, CheckpointState(3, 1, 2))
    assert store.latest() == CheckpointState(3, 1, 2)
    kept = sorted(p.name for p in tmp_path.iterdir() if p.is_dir())
    assert kept == ["epoch0003-step000000", "epoch0003-step000001"]

    fresh = _compiled_tiny_model()
    assert store.restore(fresh) == CheckpointState(3, 1, 2)
    assert int(fresh.optimizer.iterations) == 2
    for a, b in zip(model.weights, fresh.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(model.optimizer.variables, fresh.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_an_unfinished_checkpoint_never_becomes_latest(tmp_path):
    store = CheckpointStore(tmp_path)
    assert store.latest() is None
    assert store.restore(_compiled_tiny_model()) is None
    (tmp_path / ".tmp-epoch0001-step000000-999999").mkdir()  # a writer killed mid-save
    assert store.latest() is None
    # A pointer at a checkpoint that is not there is damage, not a dead end: from scratch.
    (tmp_path / "latest.json").write_text(
        json.dumps({"epochs_done": 4, "step_in_epoch": 0, "steps_per_epoch": 2})
    )
    found = store.resume(_compiled_tiny_model())
    assert found.state is None
    assert [str(d) for d in found.damaged] == [
        "epoch0004-step000000: is missing (latest.json points at it)"
    ]


def test_epoch_metrics_skip_steps_already_logged():
    run_log = MemoryRunLog()
    run_log.log_metrics({"loss": 9.0, "val_top1": 0.1}, step=1)
    callback = EpochMetrics(run_log)
    logs = {"xent": 1.5, "top1": 0.5, "val_xent": 1.2, "val_top1": 0.6, "val_top5": 1.0}
    callback.on_epoch_end(0, logs)  # epoch 1: loss and val_top1 already there
    callback.on_epoch_end(1, logs)
    callback.on_epoch_end(1, logs)  # a repeated epoch is never logged twice
    assert run_log.metrics["loss"] == [(1, 9.0), (2, 1.5)]
    assert run_log.metrics["val_top1"] == [(1, 0.1), (2, 0.6)]
    assert run_log.metrics["top1"] == [(1, 0.5), (2, 0.5)]
    assert run_log.metrics["val_loss"] == [(1, 1.2), (2, 1.2)]


def test_an_evaluation_that_missed_examples_fails_before_its_metrics_are_logged():
    """Keras ends a short evaluation with a warning only ("Your input ran out of data")."""
    check = ValidationCount(expected=32)
    check.on_epoch_end(0, {"val_top1": 0.5, "val_examples": 32.0})
    check.on_epoch_end(0, {"top1": 0.5})  # an epoch without evaluation
    with pytest.raises(IncompleteEvaluation, match="epoch 2: evaluation counted 22 validation"):
        check.on_epoch_end(1, {"val_top1": 0.5, "val_examples": 22.0})


def test_throughput_leaves_out_the_first_steps_of_each_epoch(monkeypatch):
    clock = iter([0.0, 100.0, 101.0, 102.0, 103.0, 104.0, 110.0])
    monkeypatch.setattr("mnv1.training.callbacks.time.perf_counter", lambda: next(clock))
    meter = Throughput(global_batch=8, skip=2)
    meter.on_epoch_begin(0)  # t=0
    for step, _ in enumerate(range(5)):  # steps end at t = 100 (tracing), 101, 102, 103, 104
        meter.on_train_batch_end(step)
    meter.on_epoch_end(0)  # t=110 (evaluation is not training time)
    # Steps 3..5 timed from the end of step 2 (t=101) to t=104: 24 images in 3 s.
    assert meter.images == 24
    assert meter.images_per_sec == pytest.approx(8.0)
    assert meter.epoch_seconds == pytest.approx(110.0)


def test_nan_loss_stops_with_a_clear_reason():
    callback = StopOnNaN(lambda: 0.5)
    callback.on_epoch_begin(1)
    callback.on_train_batch_end(0, {"loss": 2.0})
    with pytest.raises(TrainingDiverged, match=r"became nan at epoch 2, step 4 \(learning rate"):
        callback.on_train_batch_end(3, {"loss": float("nan")})


def test_cost_table_lists_every_layer_and_the_totals():
    costs = count_costs(build_mobilenet_v1(alpha=0.25, resolution=32, num_classes=4))
    table = cost_table(costs).splitlines()
    assert table[0].split() == ["layer", "type", "output", "mult_adds", "params", "keras_params"]
    assert len(table) == len(costs.layers) + 2
    assert table[-1].split() == [
        "total",
        f"{costs.mult_adds:,}",
        f"{costs.params:,}",
        f"{costs.keras_params:,}",
    ]


def test_jsonl_tracker_round_trip_survives_a_cut_last_line(tmp_path):
    path = tmp_path / "run.jsonl"
    run_log = JsonlRunLog(path)
    run_log.log_params({"model.alpha": 0.25})
    run_log.log_metrics({"loss": 1.0}, step=1)
    run_log.log_metrics({"loss": 0.5}, step=2)
    run_log.log_metrics({"val_top1": 0.9})
    run_log.set_tags({"mnv1.replicas": 2})
    run_log.log_text("costs.txt", "a\nb")
    with path.open("a") as out:
        out.write('{"kind": "metrics", "step": 3, "metr')  # a process killed mid-write
    again = JsonlRunLog(path)
    assert again.logged_metric_steps("loss") == [1, 2]
    assert again.metric_history("val_top1") == [(None, 0.9)]
    assert again.tags() == {"mnv1.replicas": "2"}
    assert again.texts() == {"costs.txt": "a\nb"}


def test_worker_tracker_specs(tmp_path):
    cfg = RunConfig()
    assert isinstance(make_run_log(f"jsonl:{tmp_path / 'x.jsonl'}", cfg), JsonlRunLog)
    with pytest.raises(ValueError, match="--run-log must be jsonl:PATH or mlflow:RUN_ID"):
        make_run_log("jsonl", cfg)
    with pytest.raises(ValueError, match="kind must be jsonl or mlflow, got 'wandb'"):
        make_run_log("wandb:1", cfg)


def test_worker_rejects_unreadable_or_unknown_configs(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train": {"epochz": 3}}))
    with pytest.raises(ValueError, match="epochz"):
        load_config(bad)
    assert main(["--config", str(bad)]) == 2
    assert "epochz" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.json")]) == 2
