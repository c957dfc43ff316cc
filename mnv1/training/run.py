"""One training run: strategy, model, recipe, honest evaluation, checkpoint resume, tracking.

``run_training`` is called once per process (``python -m mnv1.training.worker``): several
``MirroredStrategy`` trainings of different shapes in one process fail with "Collective ops is
aborted by: Shape mismatch" (tensorflow/tensorflow#61314). Importing this module does not touch
TensorFlow's devices; ``mnv1.training.bootstrap.bootstrap`` must run first when the run needs
logical CPU
devices, thread pools or GPU settings.

What a run logs (names in ``tracking/schema.py``; the extra tags in ``mnv1.training.plan``):

* params: the flattened config (``model.alpha`` …);
* metrics: ``alpha``, ``resolution``, ``mult_adds``, ``params``, ``keras_params`` once; ``loss``,
  ``top1``, ``val_loss``, ``val_top1``, ``val_top5`` per epoch (step = epoch, 1..N); final
  ``val_top1``, ``val_top5``, ``val_examples``, ``train_images_per_sec``, ``epoch_seconds``;
* tags: variant, replicas, strategy, resumed-from epoch, versions, devices, the BatchNorm
  settings actually used, the learning-rate plan, and the dataset fingerprint;
* texts: ``costs.txt`` (per-layer cost table) and ``model_summary.txt``; the model at the end
  (with an input example, ``tracking.log_model``);
* dataset inputs: the split it trained on and the one it was scored on (``mnv1.data.inputs``);
* with ``export.enabled``: both LiteRT flatbuffers, their sizes, int8 top-1 and batch-1 latency
  (``mnv1.export.cell``).

Evaluation counts every validation example exactly once: each validation batch is padded to the
global batch with zero-weight rows (so every replica gets a full, equal share and BatchNorm never
sees an empty replica), and every metric is sample-weighted, so padding never counts. The data
layer fills its in-memory caches before training (``mnv1.data.pipeline.fill_cache``: Keras drops
partly read iterators, which could leave a lazily filled cache holding part of the split), and
each evaluation's count is checked against the split (``ValidationCount``): a short one fails
the run rather than being logged.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from mnv1 import run_key, tables
from mnv1.config import RunConfig, flatten, to_dict
from mnv1.costs import ModelCosts, count_costs
from mnv1.data.types import Datasets
from mnv1.export.cell import check_export_config, export_cell
from mnv1.model import build_mobilenet_v1
from mnv1.runlog import RunLog
from mnv1.timing import BUILD, CHECKPOINT, DATA, EVALUATE, IMPORT, TRACKING, TRAIN, PhaseRecorder
from mnv1.tracking import schema
from mnv1.training.background import InBackground
from mnv1.training.batchnorm import BatchNormStats
from mnv1.training.bootstrap import apply_run_settings
from mnv1.training.callbacks import (
    BeforeEvaluation,
    Checkpointing,
    EpochLine,
    EpochMetrics,
    PhaseTiming,
    StopOnNaN,
    Throughput,
    ValidationCount,
    check_val_examples,
)
from mnv1.training.checkpoint import CheckpointStore
from mnv1.training.plan import (
    TAG_RESUMED_FROM_STEP,
    Platform,
    RunPlan,
    plan_run,
    planned_train_images,
)
from mnv1.training.recipe import check_train_config, make_loss, make_metrics, make_optimizer
from mnv1.training.repro import device_kind
from mnv1.training.resume import resume_checkpoint
from mnv1.training.strategy import check_global_batch, make_strategy

METRIC_VAL_EXAMPLES = schema.METRIC_VAL_EXAMPLES

COSTS_TEXT = "costs.txt"
SUMMARY_TEXT = "model_summary.txt"


@dataclass
class RunResult:
    val_top1: float
    val_top5: float
    mult_adds: int
    params: int
    keras_params: int
    train_images_per_sec: float
    """NaN when this process trained no epoch of two steps or more (nothing steady to time)."""
    epoch_seconds: float
    epochs_done: int
    resumed_from_epoch: int
    replicas: int
    val_examples: int = 0
    """Validation examples counted by the final evaluation (every one, exactly once)."""


@dataclass(frozen=True)
class Built:
    """The run's compiled model and its optimizer, created inside the strategy's scope."""

    model: keras.Model
    optimizer: keras.optimizers.Optimizer


@dataclass(frozen=True)
class StartPoint:
    """Where this process starts training: epochs already done, and steps into the next one."""

    epoch: int
    step: int = 0


@dataclass(frozen=True)
class Streams:
    """The batches fit reads: endless one-hot training batches, padded validation batches."""

    train: tf.data.Dataset
    val: tf.data.Dataset


@dataclass(frozen=True)
class Fitted:
    """What fit leaves for the final evaluation: the last epoch's metrics and the throughput."""

    epoch_metrics: EpochMetrics
    throughput: Throughput


def run_training(
    cfg: RunConfig,
    run_log: RunLog,
    datasets: Datasets | None = None,
    checkpoint_dir: Path | None = None,
    phases: PhaseRecorder | None = None,
) -> RunResult:
    """Train one run to ``cfg.train.epochs`` epochs, resuming from its last checkpoint.

    The steps, in order: the strategy, the data, the plan (``mnv1.training.plan``), build, the
    start-of-run log, resume, fit, the final evaluation and the end-of-run log. ``phases``
    records where the time goes (``mnv1.timing``); pass a ``TimedRunLog`` on the same recorder
    to count run log calls as ``tracking``.
    """
    phases = phases or PhaseRecorder()
    check_train_config(cfg.train)
    check_export_config(cfg.export)
    run_log.log_params(flatten(to_dict(cfg)))
    with phases.measure(IMPORT):  # the strategy initialises TensorFlow's devices
        strategy = start_strategy(cfg)
    if datasets is None:
        with phases.measure(DATA):  # includes filling the in-memory caches
            datasets = load_run_data(cfg)
    plan = plan_run(
        cfg,
        platform_of(strategy),
        datasets.train_examples,
        datasets.num_classes,
        datasets.fingerprint.as_tags(),
    )
    with phases.measure(BUILD):
        built = build_model(plan, strategy)
        costs = count_costs(built.model)
    log_start(plan, built.model, costs, datasets, run_log, phases)
    streams = make_streams(plan, datasets)
    store = CheckpointStore(
        checkpoint_dir if checkpoint_dir is not None else run_key.checkpoint_dir(cfg),
        keep=cfg.train.keep_checkpoints,
    )
    with phases.measure(CHECKPOINT), strategy.scope():
        start = resume_run(plan, store, built.model, run_log)
    fitted = fit_run(plan, built, strategy, datasets, streams, store, start, run_log, phases)
    with phases.measure(EVALUATE):
        final = evaluate_run(built.model, streams.val, datasets.val_examples, fitted)
    log_end(plan, built.model, datasets, final, run_log, phases)
    return run_result(plan, costs, start, fitted, final)


def run_result(
    plan: RunPlan, costs: ModelCosts, start: StartPoint, fitted: Fitted, final: dict[str, float]
) -> RunResult:
    """What ``run_training`` returns: the final numbers, the costs and where this process began."""
    return RunResult(
        val_top1=final[schema.METRIC_VAL_TOP1],
        val_top5=final[schema.METRIC_VAL_TOP5],
        mult_adds=costs.mult_adds,
        params=costs.params,
        keras_params=costs.keras_params,
        train_images_per_sec=fitted.throughput.images_per_sec,
        epoch_seconds=fitted.throughput.epoch_seconds,
        epochs_done=plan.cfg.train.epochs,
        resumed_from_epoch=start.epoch,
        replicas=plan.replicas,
        val_examples=round(final[METRIC_VAL_EXAMPLES]),
    )


def start_strategy(cfg: RunConfig) -> tf.distribute.Strategy:
    """The run's strategy (initialises TensorFlow's devices), a fresh Keras session and the run's
    settings. A global batch that does not split over the replicas fails here, before any data
    is read."""
    strategy = make_strategy(cfg.distribute)
    check_global_batch(cfg.train.batch_size, int(strategy.num_replicas_in_sync))
    keras.utils.clear_session()  # fresh layer names and global state for this run
    apply_run_settings(cfg.train)
    return strategy


def platform_of(strategy: tf.distribute.Strategy) -> Platform:
    """What this process offers a plan: the strategy's replicas and devices, the versions."""
    devices = tuple(strategy.extended.worker_devices)
    return Platform(
        strategy=type(strategy).__name__,
        replicas=int(strategy.num_replicas_in_sync),
        devices=devices,
        tf_version=tf.__version__,
        keras_version=keras.__version__,
        cuda_version=str(tf.sysconfig.get_build_info().get("cuda_version", "none")),
        device_kind=device_kind(devices),
    )


def load_run_data(cfg: RunConfig) -> Datasets:
    """The run's splits, its in-memory caches filled for the images it plans to read."""
    from mnv1.data.pipeline import load_datasets

    return load_datasets(
        cfg.data,
        cfg.model.resolution,
        cfg.train.batch_size,
        cfg.train.seed,
        train_images=planned_train_images(cfg),
    )


def build_model(plan: RunPlan, strategy: tf.distribute.Strategy) -> Built:
    """Model, optimizer and metrics, all created inside the strategy's scope."""
    cfg = plan.cfg
    with strategy.scope():
        model = build_mobilenet_v1(
            alpha=cfg.model.alpha,
            resolution=cfg.model.resolution,
            num_classes=plan.num_classes,
            variant=cfg.model.variant,
            dropout=cfg.model.dropout,
            activation=cfg.model.activation,
            bn_momentum=plan.bn_momentum,
            sync_bn=cfg.model.sync_bn,
        )
        optimizer = make_optimizer(cfg.train, plan.steps_per_epoch, model)
        model.compile(
            optimizer=optimizer,
            loss=make_loss(cfg.train),
            weighted_metrics=make_metrics(cfg.train),
            jit_compile=plan.jit,
        )
    return Built(model, optimizer)


def log_start(
    plan: RunPlan,
    model: keras.Model,
    costs: ModelCosts,
    datasets: Datasets,
    run_log: RunLog,
    phases: PhaseRecorder,
) -> None:
    """What the run logs before training: its costs, the plan's tags, its dataset inputs, and
    the cost table and model summary as texts."""
    run_log.log_metrics(
        {
            schema.METRIC_ALPHA: plan.cfg.model.alpha,
            schema.METRIC_RESOLUTION: plan.cfg.model.resolution,
            schema.METRIC_MULT_ADDS: costs.mult_adds,
            schema.METRIC_PARAMS: costs.params,
            schema.METRIC_KERAS_PARAMS: costs.keras_params,
        }
    )
    run_log.set_tags(dict(plan.tags))
    run_log.log_inputs(datasets.inputs)  # the splits trained on and scored on, as datasets
    with phases.measure(BUILD):
        texts = {COSTS_TEXT: cost_table(costs), SUMMARY_TEXT: model_summary(model)}
    for text_name, text in texts.items():
        run_log.log_text(text_name, text)


def make_streams(plan: RunPlan, datasets: Datasets) -> Streams:
    return Streams(
        train=training_data(datasets.train, datasets.num_classes),
        val=validation_data(
            datasets.val, datasets.val_examples, plan.cfg.train.batch_size, datasets.num_classes
        ),
    )


def resume_run(
    plan: RunPlan, store: CheckpointStore, model: keras.Model, run_log: RunLog
) -> StartPoint:
    """Load the newest good checkpoint into ``model`` and tag where the run resumes from.

    Call inside the strategy's scope: the optimizer's slots are created there when restoring. A
    damaged checkpoint falls back to an older one, or to a start from scratch, in this same run
    (``mnv1.training.resume``).
    """
    state = resume_checkpoint(store, model, plan.steps_per_epoch, run_log)
    start = StartPoint(state.epochs_done, state.step_in_epoch) if state else StartPoint(0)
    run_log.set_tags(
        {schema.TAG_RESUMED_FROM_EPOCH: str(start.epoch), TAG_RESUMED_FROM_STEP: str(start.step)}
    )
    return start


def fit_run(
    plan: RunPlan,
    built: Built,
    strategy: tf.distribute.Strategy,
    datasets: Datasets,
    streams: Streams,
    store: CheckpointStore,
    start: StartPoint,
    run_log: RunLog,
    phases: PhaseRecorder,
) -> Fitted:
    """Train from ``start`` to the last epoch: a resumed epoch's remaining steps first."""
    train = plan.cfg.train
    recalibration = None
    if train.bn_recalibration_batches:
        # Created before fit's own iterator: see recalibration_data.
        with phases.measure(EVALUATE):
            recalibration = iter(
                strategy.experimental_distribute_dataset(
                    recalibration_data(datasets.train, train.bn_recalibration_batches)
                )
            )
    bn_stats = BatchNormStats(built.model, strategy, recalibration, train.bn_recalibration_batches)
    fitted = Fitted(EpochMetrics(run_log), Throughput(train.batch_size))
    checkpointing = Checkpointing(
        store, plan.steps_per_epoch, train.checkpoint_every_steps, phases=phases
    )
    interactive = sys.stdout.isatty()
    callbacks: list[keras.callbacks.Callback] = [
        PhaseTiming(phases),  # first: see PhaseTiming
        StopOnNaN(lambda: float(built.optimizer.learning_rate)),
        fitted.throughput,
        BeforeEvaluation(bn_stats.prepare_for_evaluation),
        ValidationCount(datasets.val_examples),  # before the metrics are logged
        fitted.epoch_metrics,  # before checkpointing: see mnv1.training.callbacks
        checkpointing,
    ]
    if not interactive:
        callbacks.append(EpochLine(train.epochs))

    def fit(first_epoch: int, last_epoch: int, steps: int) -> None:
        with phases.measure(TRAIN):  # evaluation, checkpoints and tracking inside count apart
            built.model.fit(
                streams.train,
                validation_data=streams.val,
                initial_epoch=first_epoch,
                epochs=last_epoch,
                steps_per_epoch=steps,
                callbacks=callbacks,
                verbose=1 if interactive else 0,
                shuffle=False,  # the data layer shuffles; Keras cannot shuffle a tf.data stream
            )

    epoch = start.epoch
    if start.step and epoch < train.epochs:
        # Resumed mid-epoch: finish that epoch's remaining steps first.
        checkpointing.step_offset = start.step
        fit(epoch, epoch + 1, plan.steps_per_epoch - start.step)
        epoch += 1
    if epoch < train.epochs:
        fit(epoch, train.epochs, plan.steps_per_epoch)
    return fitted


def log_end(
    plan: RunPlan,
    model: keras.Model,
    datasets: Datasets,
    final: dict[str, float],
    run_log: RunLog,
    phases: PhaseRecorder | None = None,
) -> None:
    """The final metrics, then the model and, with ``export.enabled``, its LiteRT exports.

    The LoggedModel is written on a thread of its own (``mnv1.training.background``) while the
    export converts the model; the export waits for it before it logs the flatbuffers onto it
    and times their latency, and the run waits for it in any case before it goes on, so a
    failure of either fails the run, as when they ran one after the other. ``phases`` counts
    the waits as ``tracking``.
    """
    phases = phases or PhaseRecorder()
    run_log.log_metrics(final)
    upload = None
    if plan.cfg.tracking.log_model:
        example = next(iter(datasets.val))[0][:1]
        upload = InBackground(run_log.log_model, model, example.numpy(), name="mnv1-log-model")

    def logged_model() -> None:
        if upload is not None:
            with phases.measure(TRACKING):
                upload.wait()

    try:
        if plan.cfg.export.enabled:  # LiteRT flatbuffers, int8 top-1, latency (mnv1.export)
            export_cell(
                model,
                datasets.train,
                datasets.val,
                plan.cfg.export,
                run_log,
                final[schema.METRIC_VAL_TOP1],
                ready=logged_model,  # its exports join the LoggedModel
            )
    finally:
        logged_model()


def evaluate_run(
    model: keras.Model, val_data: tf.data.Dataset, val_examples: int, fitted: Fitted
) -> dict[str, float]:
    """The final metrics: the last epoch's validation numbers (or a fresh evaluation when every
    epoch was done before this process) and this process's throughput."""
    epoch_metrics, throughput = fitted.epoch_metrics, fitted.throughput
    if epoch_metrics.last:
        final = {
            schema.METRIC_VAL_TOP1: epoch_metrics.last["val_top1"],
            schema.METRIC_VAL_TOP5: epoch_metrics.last["val_top5"],
            METRIC_VAL_EXAMPLES: epoch_metrics.last_val_examples or 0.0,
        }
    else:
        # Every epoch was done before this process: the checkpoint holds the weights and the
        # BatchNorm statistics prepared for the last evaluation, so evaluate them as they are.
        logs = model.evaluate(val_data, verbose=0, return_dict=True)
        check_val_examples(float(logs["examples"]), val_examples, "final evaluation")
        final = {
            schema.METRIC_VAL_TOP1: float(logs["top1"]),
            schema.METRIC_VAL_TOP5: float(logs["top5"]),
            METRIC_VAL_EXAMPLES: float(logs["examples"]),
        }
    for key, value in (
        (schema.METRIC_TRAIN_IPS, throughput.images_per_sec),
        (schema.METRIC_EPOCH_SECONDS, throughput.epoch_seconds),
    ):
        if math.isfinite(value):  # not measured when this process trained no epoch
            final[key] = value
    return final


def training_data(train: tf.data.Dataset, num_classes: int) -> tf.data.Dataset:
    """Full global batches of ``(images, one-hot labels)``, repeated without end.

    ``fit`` draws ``steps_per_epoch`` batches per epoch from one endless iterator.
    """

    def one_hot(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        return images, tf.one_hot(labels, num_classes)

    return (
        train.map(one_hot, num_parallel_calls=tf.data.AUTOTUNE).repeat().prefetch(tf.data.AUTOTUNE)
    )


def recalibration_data(train: tf.data.Dataset, batches: int) -> tf.data.Dataset:
    """The training images BatchNorm statistics are re-estimated on: ``batches`` batches drawn
    once and kept in memory (20 batches of 32 at 224 px take 385 MB).

    Drawn once, not streamed, for determinism: every iterator over one shuffled ``tf.data``
    pipeline takes its shuffle order from one shared seed generator, and a second stream would
    draw from it whenever it started a pass, racing fit's iterator, whose passes start in
    background prefetch threads. This iterator draws once, when it is created (before fit's),
    and the cache serves every later pass.
    """
    images = train.take(batches).map(lambda images, labels: images)
    return images.cache().repeat()


def validation_data(
    val: tf.data.Dataset, examples: int, global_batch: int, num_classes: int
) -> tf.data.Dataset:
    """``(images, one-hot labels, weights)`` batches, each padded to the global batch.

    Real examples weigh 1 and padding rows 0, so sample-weighted metrics count every
    validation example exactly once whatever the batch and replica counts.
    """

    def pad(images: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
        real = tf.shape(images)[0]
        missing = global_batch - real
        paddings = [[0, missing]] + [[0, 0]] * (images.shape.rank - 1)
        images = tf.pad(images, paddings)
        targets = tf.pad(tf.one_hot(labels, num_classes), [[0, missing], [0, 0]])
        weights = tf.concat([tf.ones([real]), tf.zeros([missing])], axis=0)
        images = tf.ensure_shape(images, [global_batch, *images.shape[1:]])
        return images, tf.ensure_shape(targets, [global_batch, num_classes]), weights

    # rebatch: whatever batch size the data layer chose, never more than one global batch.
    # The declared cardinality lets Keras know the epoch length (it warns "ran out of data"
    # otherwise), and fails loudly if the split does not hold ``examples`` examples when the
    # dataset is read as it is. tf.distribute's rewrite drops the assertion (it logs so), so
    # under a strategy the count is checked after each evaluation (``ValidationCount``).
    batches = -(-examples // global_batch)
    return (
        val.rebatch(global_batch)
        .map(pad)
        .apply(tf.data.experimental.assert_cardinality(batches))
        .prefetch(tf.data.AUTOTUNE)
    )


def cost_table(costs: ModelCosts) -> str:
    """Per-layer mult-adds and parameters as an aligned text table, totals last."""
    header = ("layer", "type", "output", "mult_adds", "params", "keras_params")
    rows = [
        (
            row.name,
            row.type,
            "x".join(str(d) for d in row.output_shape),
            f"{row.mult_adds:,}",
            f"{row.params:,}",
            f"{row.keras_params:,}",
        )
        for row in costs.layers
    ]
    rows.append(
        ("total", "", "", f"{costs.mult_adds:,}", f"{costs.params:,}", f"{costs.keras_params:,}")
    )
    return tables.text(header, rows, [False, False, False, True, True, True])


def model_summary(model: keras.Model) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda text, **_: lines.append(text), line_length=110)
    return "\n".join(lines) + "\n"
