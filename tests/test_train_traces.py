"""What one run traces (``mnv1.training.traces``), pinned: each model function once per run.

A trace is the first-step cost of a ``tf.function`` (graph building, then Grappler); a retrace
pays it again. These runs go through ``run_training`` in this process on one CPU device with the
tiny cell (α 0.25, 32 px, 4 classes), a real MLflow run log (its LoggedModel included) and the
LiteRT export on, as a demo cell runs: two epochs, and 20 validation examples, so the last
validation batch is short (padded to the global batch). Any change that traces a step again
(per epoch, for the short batch, for the LoggedModel or on a resume) changes the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from train_support import make_datasets, tiny_config

from mnv1.config import RunConfig, from_dict
from mnv1.runlog import MemoryRunLog
from mnv1.training.run import run_training
from mnv1.training.traces import ITERATOR_FUNCTIONS, TraceLog, function_name

TRAIN_STEP = ["one_step_on_data", "multi_step_on_iterator"]  # Keras: the step in its loop
EVALUATION_STEP = TRAIN_STEP  # the same two Keras functions, made for evaluation
# In order: fit's first step traces the train step; the first evaluation re-estimates BatchNorm
# (its step) and then traces the evaluation step; after the last epoch the export traces the
# batch-1 function the LiteRT converter reads. Nothing more, whatever the epoch count.
ONE_RUN = [*TRAIN_STEP, "recalibration_step", *EVALUATION_STEP, "serve"]


def cell(tmp_path: Path, export: bool = True, **train: object) -> RunConfig:
    settings = {"epochs": 2, "steps_per_epoch": 2, "bn_recalibration_batches": 2, **train}
    return from_dict(
        tiny_config(
            tmp_path,
            train=settings,
            distribute={"cpu_replicas": None},
            tracking={"log_model": True},
            export={"enabled": export, "representative_batches": 1, "warmup": 1, "repeats": 1},
        )
    )


def test_function_names_drop_the_prefix_and_the_uid() -> None:
    assert function_name(b"__inference_recalibration_step_1234") == "recalibration_step"
    assert function_name("__inference_one_step_on_data_7") == "one_step_on_data"
    assert function_name("not_a_concrete_name") == "not_a_concrete_name"


@pytest.mark.timeout(300)
def test_one_run_traces_each_model_function_once(tmp_path: Path, sqlite_uri: str) -> None:
    from mnv1.tracking import runs
    from mnv1.tracking.runlog import MLflowRunLog
    from mnv1.tracking.store import ensure_experiment

    run_id = runs.create(sqlite_uri, ensure_experiment(sqlite_uri, "traces"), "cell", {})
    run_log = MLflowRunLog(run_id, sqlite_uri)
    data = make_datasets(train_count=64, val_count=20, resolution=32, global_batch=16)
    with TraceLog() as traces:
        run_training(cell(tmp_path), run_log, datasets=data, checkpoint_dir=tmp_path / "ck")

    assert traces.model_functions() == ONE_RUN
    # The input side: one distributed iterator for the BatchNorm batches, two at fit's start
    # (Keras reads one batch to build the model symbolically, then opens its epoch iterator),
    # and three per evaluation (the same symbolic read, the pass, and the iterator Keras opens
    # ahead for the next pass); each traces the six functions of a multi-device iterator.
    assert traces.iterator_traces() == 1 + 2 + 3 * 2
    assert {name: traces.counts()[name] for name in ITERATOR_FUNCTIONS} == dict.fromkeys(
        ITERATOR_FUNCTIONS, 9
    )
    # tf.data traces each function a pipeline maps over once: the in-memory set's and the
    # run's own (one-hot labels, the padding of validation batches, BatchNorm's images).
    assert sorted(n for n in traces.names if n.startswith("Dataset_")) == [
        "Dataset_map_lambda",
        "Dataset_map_normalize",
        "Dataset_map_one_hot",
        "Dataset_map_pad",
    ]


@dataclass
class CrashingRunLog(MemoryRunLog):
    """Fails while logging the first epoch's metrics, like a process dying at that moment."""

    crash: bool = True

    def log_metrics(self, metrics, step=None):  # type: ignore[no-untyped-def]
        if self.crash and step == 1:
            raise KeyboardInterrupt("simulated crash at the end of epoch 1")
        super().log_metrics(metrics, step)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_run_resumed_mid_epoch_traces_each_step_once_over_its_two_fits(tmp_path: Path) -> None:
    cfg = cell(tmp_path, export=False, checkpoint_every_steps=1)
    data = make_datasets(train_count=64, val_count=20, resolution=32, global_batch=16)
    run_log = CrashingRunLog()
    with pytest.raises(KeyboardInterrupt):
        run_training(cfg, run_log, datasets=data, checkpoint_dir=tmp_path / "ck")
    run_log.crash = False
    with TraceLog() as traces:
        run_training(cfg, run_log, datasets=data, checkpoint_dir=tmp_path / "ck")

    assert run_log.tags["mnv1.resumed_from_step"] == "1"  # fit ran twice: 1 step, then epoch 2
    assert traces.model_functions() == [*TRAIN_STEP, "recalibration_step", *EVALUATION_STEP]
