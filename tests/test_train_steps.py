"""The steps of one training run, each on its own (``mnv1.training.plan``, ``mnv1.training.run``):
the plan of a config, build, resume, the start-of-run log, and the probe's typed request and
result. In this process, on one CPU device and the tiny smoke cell (α 0.25, 32 px, 4 classes)."""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass, field

import pytest
from mnv1.tracking import schema
from train_support import make_datasets, tiny_config

from mnv1.config import RunConfig, from_dict
from mnv1.costs import count_costs
from mnv1.model import build_mobilenet_v1
from mnv1.runlog import MemoryRunLog
from mnv1.timing import PhaseRecorder
from mnv1.training.checkpoint import CheckpointState, CheckpointStore
from mnv1.training.plan import Platform, plan_run, planned_train_images
from mnv1.training.probe import (
    PROBE_VAL_EXAMPLES,
    SKIPPED_STEPS,
    TIMED_STEPS,
    ProbeRequest,
    ProbeResult,
    ProbeTimings,
    probe_config,
    probe_val_examples,
)
from mnv1.training.recipe import make_optimizer
from mnv1.training.run import (
    StartPoint,
    build_model,
    log_end,
    log_start,
    platform_of,
    resume_run,
    start_strategy,
)

CPU = Platform(
    strategy="OneDeviceStrategy",
    replicas=1,
    devices=("/job:localhost/replica:0/task:0/device:CPU:0",),
    tf_version="2.99.0",
    keras_version="3.99.0",
    cuda_version="none",
    device_kind="CPU: Test CPU",
)
# Keras' parameter count of the tiny cell, by hand: convolutions without bias, four BatchNorm
# numbers per channel (γ, β, moving mean and variance), widths 8..256 (α 0.25 of Table 1), and
# the 256x4 classifier with its bias.
TINY_PARAMS = 219_572


def smoke_config(tmp_path, train=None, model=None) -> RunConfig:
    return from_dict(
        tiny_config(
            tmp_path,
            train={"epochs": 2, "bn_recalibration_batches": 2, **(train or {})},
            model=model or {},
            distribute={"cpu_replicas": None},
        )
    )


def test_the_plan_of_a_config_is_pure_and_exact(tmp_path):
    cfg = smoke_config(tmp_path, train={"steps_per_epoch": 250, "warmup_epochs": 0.5})
    plan = plan_run(cfg, CPU, train_examples=64, num_classes=4, data_tags={"mnv1.data.name": "q"})

    assert plan == plan_run(cfg, CPU, 64, 4, {"mnv1.data.name": "q"})  # nothing else decides it
    assert (plan.cfg, plan.num_classes, plan.replicas, plan.per_replica_batch) == (cfg, 4, 1, 16)
    assert (plan.steps_per_epoch, plan.total_steps) == (250, 500)
    # 1 - 10 / 500 steps: the moving average spans a tenth of the run.
    assert (plan.bn_momentum, plan.bn_momentum_source) == (0.98, "step_budget")
    assert plan.jit is False  # auto: XLA on GPU only
    assert dict(plan.tags) == {
        schema.TAG_VARIANT: "separable",
        schema.TAG_REPLICAS: "1",
        schema.TAG_STRATEGY: "OneDeviceStrategy",
        "mnv1.tf_version": "2.99.0",
        "mnv1.keras_version": "3.99.0",
        "mnv1.cuda_version": "none",
        "mnv1.devices": "/job:localhost/replica:0/task:0/device:CPU:0",
        "mnv1.bn_batch_stats": "per_replica",
        "mnv1.bn_momentum": "0.98",
        "mnv1.bn_momentum_source": "step_budget",
        "mnv1.bn_recalibration_batches": "2",
        "mnv1.peak_learning_rate": "0.05",
        schema.TAG_STEPS_PER_EPOCH: "250",
        schema.TAG_TOTAL_STEPS: "500",
        "mnv1.warmup_steps": "125",
        schema.TAG_PER_REPLICA_BATCH: "16",
        "mnv1.jit_compile": "false",
        "mnv1.precision": "float32",
        schema.TAG_OP_DETERMINISM: "off",
        schema.TAG_DATA_ORDER_SEED: "0",
        schema.TAG_INIT_SEED: "0",
        schema.TAG_DEVICE_KIND: "CPU: Test CPU",
        "mnv1.data.name": "q",
    }


def test_the_plan_takes_whole_passes_a_set_momentum_and_a_target(tmp_path):
    cfg = smoke_config(tmp_path, train={"target_minutes": 2.5}, model={"bn_momentum": 0.97})
    gpus = dataclasses.replace(
        CPU, strategy="MirroredStrategy", replicas=2, devices=("/gpu:0", "/gpu:1")
    )
    plan = plan_run(cfg, gpus, train_examples=100, num_classes=4)

    assert (plan.steps_per_epoch, plan.total_steps, plan.per_replica_batch) == (6, 12, 8)
    assert (plan.bn_momentum, plan.bn_momentum_source) == (0.97, "config")
    assert plan.jit is True
    assert plan.tags[schema.TAG_TARGET_MINUTES] == "2.5"
    assert plan.tags["mnv1.devices"] == "/gpu:0,/gpu:1"


def test_a_plan_that_cannot_train_names_the_batch(tmp_path):
    cfg = smoke_config(tmp_path)
    with pytest.raises(ValueError, match=r"train\.batch_size"):
        plan_run(cfg, dataclasses.replace(CPU, replicas=3), train_examples=64, num_classes=4)
    with pytest.raises(ValueError, match=r"the training split has 8 examples, fewer than one"):
        plan_run(cfg, CPU, train_examples=8, num_classes=4)


def test_the_images_a_run_plans_to_read(tmp_path):
    assert planned_train_images(smoke_config(tmp_path, train={"steps_per_epoch": 3})) == 96
    assert planned_train_images(smoke_config(tmp_path)) is None  # whole passes, several
    assert planned_train_images(smoke_config(tmp_path, train={"epochs": 1})) == 0


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The tiny cell planned and built on this process's one CPU device."""
    cfg = smoke_config(tmp_path_factory.mktemp("steps"), train={"steps_per_epoch": 2})
    strategy = start_strategy(cfg)
    plan = plan_run(cfg, platform_of(strategy), train_examples=64, num_classes=4)
    return plan, strategy, build_model(plan, strategy)


def test_build_gives_the_planned_model_compiled_with_its_parameter_count(built):
    plan, _, result = built
    model = result.model
    assert model.name == "mnv1_a0.25_r32"
    assert model.count_params() == TINY_PARAMS
    assert count_costs(
        build_mobilenet_v1(alpha=0.25, resolution=32, num_classes=4)
    ).keras_params == (TINY_PARAMS)
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 4)
    assert model.get_layer("conv0_bn").momentum == plan.bn_momentum == 0.9  # 4 steps: the floor
    assert model.optimizer is result.optimizer and model.compiled


def test_resume_of_an_empty_checkpoint_folder_starts_at_epoch_0(built, tmp_path):
    plan, strategy, result = built
    run_log = MemoryRunLog()
    with strategy.scope():
        start = resume_run(plan, CheckpointStore(tmp_path / "empty"), result.model, run_log)
    assert start == StartPoint(0, 0)
    assert run_log.tags == {schema.TAG_RESUMED_FROM_EPOCH: "0", "mnv1.resumed_from_step": "0"}


def test_resume_starts_where_the_newest_checkpoint_stood(built, tmp_path):
    plan, strategy, result = built
    store = CheckpointStore(tmp_path / "ck")
    store.save(result.model, CheckpointState(1, 1, plan.steps_per_epoch))
    run_log = MemoryRunLog()
    with strategy.scope():
        start = resume_run(plan, store, result.model, run_log)
    assert start == StartPoint(1, 1)
    assert run_log.tags == {schema.TAG_RESUMED_FROM_EPOCH: "1", "mnv1.resumed_from_step": "1"}


def test_the_start_log_holds_the_costs_the_plan_tags_and_the_texts(built):
    plan, _, result = built
    costs = count_costs(result.model)
    data = make_datasets(train_count=32, val_count=16, resolution=32, global_batch=16)
    run_log = MemoryRunLog()
    log_start(plan, result.model, costs, data, run_log, PhaseRecorder())

    assert run_log.metrics[schema.METRIC_PARAMS] == [(None, costs.params)]
    assert run_log.metrics[schema.METRIC_KERAS_PARAMS] == [(None, TINY_PARAMS)]
    assert run_log.metrics[schema.METRIC_ALPHA] == [(None, 0.25)]
    assert run_log.tags == dict(plan.tags)
    assert set(run_log.texts) == {"costs.txt", "model_summary.txt"}


def test_the_probe_request_and_result_cross_a_process_as_json(tmp_path):
    cfg = smoke_config(tmp_path)
    request = ProbeRequest(
        {"a": cfg}, {"a": 4}, "max", count=("a",), known={"b": 7}, val={"a": 32}, run_id="r"
    )
    assert ProbeRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request

    timings = ProbeTimings("a", 123, 16, 2, 6, 32, 2, {"time_train_s": 1.5}, 7.25, 0.5)
    result = ProbeResult({"a": 123, "b": 7}, timings)
    assert ProbeResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_the_probe_plans_its_shape_as_a_short_run_of_that_cell_on_stand_in_data(tmp_path):
    cfg = smoke_config(tmp_path, train={"steps_per_epoch": 500, "epochs": 5, "warmup_epochs": 2.5})
    cfg.export.enabled = True
    uri = f"sqlite:///{tmp_path / 'probe.db'}"
    probed = probe_config(cfg, 4, probe_val_examples(5000), tmp_path / "run", uri)
    t = probed.train
    # 2 of the 5 epochs, 3 skipped and 3 timed steps each; the warm-up shortened with them.
    assert (t.epochs, t.steps_per_epoch, t.warmup_epochs) == (2, SKIPPED_STEPS + TIMED_STEPS, 1.0)
    assert (t.target_minutes, t.checkpoint_dir) == (None, str(tmp_path / "run" / "checkpoints"))
    assert dataclasses.replace(t, epochs=5, steps_per_epoch=500, warmup_epochs=2.5,
                               checkpoint_dir=cfg.train.checkpoint_dir) == cfg.train  # fmt: skip
    assert probed.model == cfg.model and probed.distribute == cfg.distribute
    assert (probed.tracking.uri, probed.tracking.experiment) == (uri, "probe")
    assert probed.tracking.log_model == cfg.tracking.log_model and not probed.export.enabled
    s = probed.data.synthetic
    # The cell's synthetic images, 1024 validation images at most, 2 × 6 batches of 16 to train.
    assert (probed.data.source, probed.data.data_dir) == ("synthetic", str(tmp_path / "run/tfds"))
    assert (s.image_size, s.num_classes, s.val_size, s.train_size) == (
        cfg.data.synthetic.image_size, 4, PROBE_VAL_EXAMPLES, 2 * 6 * 16,
    )  # fmt: skip
    plan = plan_run(probed, CPU, train_examples=s.train_size, num_classes=4)
    assert (plan.steps_per_epoch, plan.tags["mnv1.warmup_steps"]) == (6, "6")
    make_optimizer(probed.train, plan.steps_per_epoch)  # the schedule accepts it
    # Another source: synthetic stand-in images of 256 px, at most 25 classes.
    cfg.data.source, cfg.data.name = "tfds", "imagenet2012"
    standin = probe_config(cfg, 1000, 50, tmp_path / "run", uri).data
    assert (standin.source, standin.synthetic.image_size, standin.synthetic.num_classes) == (
        "synthetic", 256, 25,
    )  # fmt: skip
    assert standin.synthetic.val_size == 50


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_real_probe_process_answers_the_typed_request(tmp_path, monkeypatch):
    """``mnv1.sweep.probe.measure`` on the tiny cell: one fresh ``python -m
    mnv1.training.probe`` process reads the request and writes the result as JSON."""
    from mnv1.costs import costs_for
    from mnv1.sweep.plan import num_classes, shape_of
    from mnv1.sweep.probe import measure

    monkeypatch.setenv("MNV1_PROBE_DIR", str(tmp_path / "probe"))
    cfg = smoke_config(tmp_path)
    s = cfg.data.synthetic
    s.train_size, s.val_size, s.image_size = 64, 32, 64
    probed = measure([cfg], say=lambda line: None)

    shape = shape_of(cfg)
    mult_adds = costs_for(0.25, 32, num_classes(cfg), "separable").mult_adds
    assert probed.mult_adds == {shape: mult_adds}
    [point] = probed.points
    assert (point.shape, point.mult_adds, point.batch) == (shape, mult_adds, 16)
    # A short real run of the cell: its epochs, 6 steps each, its 32 validation images.
    assert (point.epochs, point.steps_per_epoch, point.val_examples) == (2, 6, 32)
    m = point.metrics
    for phase in ("import", "data", "build", "trace", "train", "evaluate", "checkpoint"):
        assert m[f"time_{phase}_s"] > 0, phase
    assert m["time_tracking_s"] > 0 and m["train_images_per_sec"] > 0  # its run log: MLflow
    assert "time_probe_own_s" not in m  # the probe's own work is no cell's
    assert point.exit_s >= 0 and point.figures.step_s > 0
    assert point.export_convert_s == 0.0  # export is off


@dataclass
class ModelLog(MemoryRunLog):
    """Records on which thread the LoggedModel is written and what the export logged before it
    ended; ``log_model`` first waits (up to 20 s) for ``converted``, or raises ``fail``."""

    converted: threading.Event = field(default_factory=threading.Event)
    fail: Exception | None = None
    events: list[str] = field(default_factory=list)
    model_thread: str = ""
    overlapped: bool = False

    def log_model(self, model, input_example):  # type: ignore[no-untyped-def]
        self.model_thread = threading.current_thread().name
        self.overlapped = self.converted.wait(timeout=20)
        if self.fail is not None:
            raise self.fail
        super().log_model(model, input_example)
        self.events.append("model")

    def log_file(self, name, data):  # type: ignore[no-untyped-def]
        super().log_file(name, data)
        self.events.append(name)


def end_of_run(built, tmp_path, export: bool):  # type: ignore[no-untyped-def]
    """``log_end``'s arguments for the built tiny cell, its LoggedModel on, export as asked."""
    _, strategy, result = built
    cfg = from_dict(
        tiny_config(
            tmp_path,
            train={"epochs": 1, "steps_per_epoch": 2},
            distribute={"cpu_replicas": None},
            tracking={"log_model": True},
            export={"enabled": export, "representative_batches": 1, "warmup": 1, "repeats": 1},
        )
    )
    plan = plan_run(cfg, platform_of(strategy), train_examples=64, num_classes=4)
    data = make_datasets(train_count=32, val_count=16, resolution=32, global_batch=16)
    return plan, result.model, data, {schema.METRIC_VAL_TOP1: 0.5}


def converting(monkeypatch, run_log: ModelLog, error: Exception | None = None) -> None:
    """The export's conversion, telling ``run_log`` when it is done (or raising ``error``)."""
    from mnv1.export import cell

    convert = cell.to_flatbuffers

    def to_flatbuffers(*args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            if error is not None:
                raise error
            return convert(*args, **kwargs)
        finally:
            run_log.converted.set()

    monkeypatch.setattr(cell, "to_flatbuffers", to_flatbuffers)


def test_the_logged_model_is_written_while_the_export_converts_and_its_files_wait_for_it(
    built, tmp_path, monkeypatch
):
    run_log = ModelLog()
    converting(monkeypatch, run_log)
    phases = PhaseRecorder()
    log_end(*end_of_run(built, tmp_path, export=True), run_log, phases)

    assert run_log.model_thread != threading.current_thread().name
    assert run_log.overlapped  # the conversion ended while the model was being logged
    # The flatbuffers are logged onto the LoggedModel, so only once it exists.
    assert run_log.events == ["model", schema.ARTIFACT_TFLITE_FP32, schema.ARTIFACT_TFLITE_INT8]
    assert len(run_log.models) == 1 and schema.METRIC_EXPORT_SECONDS in run_log.metrics
    assert phases.totals["tracking"] > 0  # the wait for the LoggedModel


def test_a_logged_model_that_fails_fails_the_end_of_the_run(built, tmp_path, monkeypatch):
    for export in (False, True):
        run_log = ModelLog(fail=RuntimeError("the store is gone"))
        run_log.converted.set()
        with pytest.raises(RuntimeError, match="the store is gone"):
            log_end(*end_of_run(built, tmp_path, export=export), run_log)
        assert run_log.events == [], export  # no flatbuffer logged without its model


def test_a_failed_export_still_waits_for_the_logged_model(built, tmp_path, monkeypatch):
    from mnv1.export.convert import ExportError

    run_log = ModelLog()
    converting(monkeypatch, run_log, ExportError("LiteRT conversion to int8 failed: no"))
    with pytest.raises(ExportError, match="conversion to int8 failed"):
        log_end(*end_of_run(built, tmp_path, export=True), run_log)
    assert run_log.events == ["model"] and len(run_log.models) == 1
