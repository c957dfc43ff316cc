"""``run_training`` in this process on one CPU device: what it logs, returns and resumes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from mnv1.tracking import schema
from train_support import make_datasets, tiny_config

from mnv1.config import from_dict
from mnv1.costs import count_costs
from mnv1.model import build_mobilenet_v1
from mnv1.runlog import MemoryRunLog
from mnv1.training.checkpoint import CheckpointStore
from mnv1.training.run import run_training


def one_device_config(tmp_path, **train):
    settings = {"epochs": 2, "steps_per_epoch": 2, "bn_recalibration_batches": 2, **train}
    return from_dict(
        tiny_config(
            tmp_path,
            train=settings,
            distribute={"cpu_replicas": None},
            tracking={"log_model": True},
        )
    )


def test_run_logs_the_run_schema_and_returns_its_results(tmp_path):
    cfg = one_device_config(tmp_path)
    run_log = MemoryRunLog()
    data = make_datasets(train_count=64, val_count=20, resolution=32, global_batch=16)
    result = run_training(cfg, run_log, datasets=data, checkpoint_dir=tmp_path / "ck")

    assert run_log.params["model.alpha"] == 0.25
    assert run_log.params["train.batch_size"] == 16
    assert run_log.params["distribute.strategy"] == "auto"
    costs = count_costs(build_mobilenet_v1(alpha=0.25, resolution=32, num_classes=4))
    assert run_log.metrics[schema.METRIC_MULT_ADDS] == [(None, costs.mult_adds)]
    assert run_log.metrics[schema.METRIC_PARAMS] == [(None, costs.params)]
    assert run_log.metrics[schema.METRIC_KERAS_PARAMS] == [(None, costs.keras_params)]
    assert run_log.metrics[schema.METRIC_ALPHA] == [(None, 0.25)]
    assert run_log.metrics[schema.METRIC_RESOLUTION] == [(None, 32)]
    for name in schema.PER_EPOCH_METRICS:
        assert run_log.logged_metric_steps(name) == [1, 2], name
    last_val_top1 = run_log.metrics["val_top1"][1][1]
    assert run_log.metrics["val_top1"][-1] == (None, last_val_top1)
    assert run_log.metrics["val_examples"] == [(None, 20.0)]
    assert run_log.last(schema.METRIC_TRAIN_IPS) > 0
    assert run_log.last(schema.METRIC_EPOCH_SECONDS) > 0

    tags = run_log.tags
    assert tags[schema.TAG_REPLICAS] == "1"
    assert tags[schema.TAG_STRATEGY] == "OneDeviceStrategy"
    assert tags[schema.TAG_VARIANT] == "separable"
    assert tags[schema.TAG_RESUMED_FROM_EPOCH] == "0"
    assert tags["mnv1.bn_batch_stats"] == "per_replica"
    assert tags["mnv1.bn_momentum"] == "0.9"  # 4 steps: the lower bound
    assert tags["mnv1.bn_momentum_source"] == "step_budget"
    assert tags["mnv1.peak_learning_rate"] == "0.05"
    assert tags["mnv1.total_steps"] == "4"
    assert tags["mnv1.data.name"] == "quadrants"
    assert tags["mnv1.tf_version"] and tags["mnv1.keras_version"]
    assert set(run_log.texts) == {"costs.txt", "model_summary.txt"}
    assert "block13_pw" in run_log.texts["costs.txt"]
    assert len(run_log.models) == 1

    assert result.val_top1 == last_val_top1
    assert result.val_examples == 20
    assert result.epochs_done == 2 and result.resumed_from_epoch == 0 and result.replicas == 1
    assert (result.mult_adds, result.params) == (costs.mult_adds, costs.params)

    # Relaunching a finished run trains nothing and reports the same validation numbers.
    again = run_training(cfg, run_log, datasets=data, checkpoint_dir=tmp_path / "ck")
    assert again.resumed_from_epoch == 2
    assert run_log.tags[schema.TAG_RESUMED_FROM_EPOCH] == "2"
    assert run_log.logged_metric_steps("loss") == [1, 2]
    assert again.val_top1 == result.val_top1
    assert again.val_top5 == result.val_top5


def test_a_run_that_fails_has_logged_its_params_first(tmp_path, monkeypatch):
    """A FAILED run still shows what it was asked to do: params go out before anything that
    can fail on the host (here: building the strategy)."""
    from mnv1.training import run as run_module

    def no_devices(distribute):
        raise RuntimeError("no device for this run")

    monkeypatch.setattr(run_module, "make_strategy", no_devices)
    cfg = one_device_config(tmp_path)
    run_log = MemoryRunLog()
    with pytest.raises(RuntimeError, match="no device for this run"):
        run_training(cfg, run_log, checkpoint_dir=tmp_path / "ck")
    assert run_log.params["model.alpha"] == 0.25
    assert run_log.params["train.batch_size"] == cfg.train.batch_size
    assert "loss" not in run_log.metrics


def test_a_split_smaller_than_one_batch_is_refused(tmp_path):
    cfg = one_device_config(tmp_path, steps_per_epoch=None)
    data = make_datasets(train_count=8, val_count=8, resolution=32, global_batch=16)
    with pytest.raises(ValueError, match="8 examples, fewer than one global batch"):
        run_training(cfg, MemoryRunLog(), datasets=data, checkpoint_dir=tmp_path / "ck")


@dataclass
class CrashingTracker(MemoryRunLog):
    """Fails while logging the first epoch's metrics, like a process dying at that moment."""

    crash: bool = True

    def log_metrics(self, metrics, step=None):
        if self.crash and step == 1:
            raise KeyboardInterrupt("simulated crash at the end of epoch 1")
        super().log_metrics(metrics, step)


@pytest.mark.slow
def test_resume_from_a_mid_epoch_checkpoint_finishes_the_exact_step_count(tmp_path):
    cfg = one_device_config(tmp_path, steps_per_epoch=4, checkpoint_every_steps=3)
    data = make_datasets(train_count=64, val_count=16, resolution=32, global_batch=16)
    run_log = CrashingTracker()
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, run_log, datasets=data, checkpoint_dir=tmp_path / "ck")
    store = CheckpointStore(tmp_path / "ck")
    latest = store.latest()
    assert latest is not None and (latest.epochs_done, latest.step_in_epoch) == (0, 3)

    run_log.crash = False
    result = run_training(cfg, run_log, datasets=data, checkpoint_dir=tmp_path / "ck")
    assert result.resumed_from_epoch == 0
    assert run_log.tags["mnv1.resumed_from_step"] == "3"
    assert run_log.logged_metric_steps("loss") == [1, 2]
    assert run_log.logged_metric_steps("val_top1") == [1, 2]
    latest = store.latest()
    assert latest is not None and (latest.epochs_done, latest.step_in_epoch) == (2, 0)

    # The optimizer ran exactly epochs × steps updates: 3 before the crash, 5 after.
    import keras

    from mnv1.training.recipe import make_loss, make_optimizer

    model = build_mobilenet_v1(alpha=0.25, resolution=32, num_classes=4, bn_momentum=0.9)
    model.compile(optimizer=make_optimizer(cfg.train, 4, model), loss=make_loss(cfg.train))
    store.restore(model)
    assert int(model.optimizer.iterations) == 8
    keras.utils.clear_session()
