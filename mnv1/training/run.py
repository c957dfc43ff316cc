"""One training run: strategy, model, recipe, honest evaluation, checkpoint resume, tracking.

``run_training`` is called once per process (``python -m mnv1.training.worker``): several
``MirroredStrategy`` trainings of different shapes in one process fail with "Collective ops is
aborted by: Shape mismatch" (tensorflow/tensorflow#61314). Importing this module does not touch
TensorFlow's devices; ``mnv1.training.bootstrap.bootstrap`` must run first when the run needs
logical CPU
devices, thread pools or GPU settings.

What a run logs (names in ``tracking/schema.py``; the extra tags are defined below):

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
from mnv1.timing import BUILD, CHECKPOINT, DATA, EVALUATE, IMPORT, TRAIN, PhaseRecorder
from mnv1.tracking import schema
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
from mnv1.training.recipe import (
    bn_momentum_for,
    check_train_config,
    make_loss,
    make_metrics,
    make_optimizer,
    peak_learning_rate,
    resolve_jit,
)
from mnv1.training.repro import reproducibility_tags
from mnv1.training.resume import resume_checkpoint
from mnv1.training.strategy import check_global_batch, make_strategy

TAG_TF_VERSION = "mnv1.tf_version"
TAG_KERAS_VERSION = "mnv1.keras_version"
TAG_CUDA_VERSION = "mnv1.cuda_version"
TAG_DEVICES = "mnv1.devices"
TAG_BN_BATCH_STATS = "mnv1.bn_batch_stats"  # "per_replica" or "synchronized"
TAG_BN_MOMENTUM = "mnv1.bn_momentum"  # the momentum used
TAG_BN_MOMENTUM_SOURCE = "mnv1.bn_momentum_source"  # "config" or "step_budget"
TAG_BN_RECALIBRATION = "mnv1.bn_recalibration_batches"
TAG_PEAK_LR = "mnv1.peak_learning_rate"
# The report reads these three back for the training budget, so their names live in the schema.
TAG_STEPS_PER_EPOCH = schema.TAG_STEPS_PER_EPOCH
TAG_TOTAL_STEPS = schema.TAG_TOTAL_STEPS
TAG_TARGET_MINUTES = schema.TAG_TARGET_MINUTES
TAG_WARMUP_STEPS = "mnv1.warmup_steps"
TAG_PER_REPLICA_BATCH = schema.TAG_PER_REPLICA_BATCH
TAG_JIT = "mnv1.jit_compile"
TAG_PRECISION = "mnv1.precision"
TAG_RESUMED_FROM_STEP = "mnv1.resumed_from_step"  # steps into the resumed epoch (0: its start)
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


def run_training(
    cfg: RunConfig,
    run_log: RunLog,
    datasets: Datasets | None = None,
    checkpoint_dir: Path | None = None,
    phases: PhaseRecorder | None = None,
) -> RunResult:
    """Train one run to ``cfg.train.epochs`` epochs, resuming from its last checkpoint.

    ``phases`` records where the time goes (``mnv1.timing``); pass a ``TimedRunLog`` on the
    same recorder to count run log calls as ``tracking``.
    """
    phases = phases or PhaseRecorder()
    check_train_config(cfg.train)
    check_export_config(cfg.export)
    run_log.log_params(flatten(to_dict(cfg)))
    with phases.measure(IMPORT):  # the strategy initialises TensorFlow's devices
        strategy = make_strategy(cfg.distribute)
        replicas = int(strategy.num_replicas_in_sync)
        per_replica = check_global_batch(cfg.train.batch_size, replicas)

        keras.utils.clear_session()  # fresh layer names and global state for this run
        apply_run_settings(cfg.train)
    if datasets is None:
        from mnv1.data.pipeline import load_datasets

        planned = (
            cfg.train.epochs * cfg.train.steps_per_epoch * cfg.train.batch_size
            if cfg.train.steps_per_epoch
            else None  # whole passes: cached when there is more than one epoch
        )
        if planned is None and cfg.train.epochs == 1:
            planned = 0  # one pass over the split: nothing is read twice
        with phases.measure(DATA):  # includes filling the in-memory caches
            datasets = load_datasets(
                cfg.data,
                cfg.model.resolution,
                cfg.train.batch_size,
                cfg.train.seed,
                train_images=planned,
            )
    steps_per_epoch = cfg.train.steps_per_epoch or datasets.train_examples // cfg.train.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"the training split has {datasets.train_examples} examples, fewer than one global "
            f"batch (train.batch_size={cfg.train.batch_size}); lower train.batch_size or set "
            "train.steps_per_epoch"
        )
    total_steps = cfg.train.epochs * steps_per_epoch
    bn_momentum = cfg.model.bn_momentum
    bn_source = "config"
    if bn_momentum is None:
        bn_momentum, bn_source = bn_momentum_for(total_steps), "step_budget"
    devices = list(strategy.extended.worker_devices)
    jit = resolve_jit(cfg.train, on_gpu=any("GPU" in d.upper() for d in devices))

    with phases.measure(BUILD):
        model, optimizer = _compiled_model(
            cfg, strategy, datasets.num_classes, steps_per_epoch, bn_momentum, jit
        )
        costs = count_costs(model)
    run_log.log_metrics(
        {
            schema.METRIC_ALPHA: cfg.model.alpha,
            schema.METRIC_RESOLUTION: cfg.model.resolution,
            schema.METRIC_MULT_ADDS: costs.mult_adds,
            schema.METRIC_PARAMS: costs.params,
            schema.METRIC_KERAS_PARAMS: costs.keras_params,
        }
    )
    tags = {
        schema.TAG_VARIANT: cfg.model.variant,
        schema.TAG_REPLICAS: str(replicas),
        schema.TAG_STRATEGY: type(strategy).__name__,
        TAG_TF_VERSION: tf.__version__,
        TAG_KERAS_VERSION: keras.__version__,
        TAG_CUDA_VERSION: str(tf.sysconfig.get_build_info().get("cuda_version", "none")),
        TAG_DEVICES: ",".join(devices),
        TAG_BN_BATCH_STATS: "synchronized" if cfg.model.sync_bn else "per_replica",
        TAG_BN_MOMENTUM: f"{bn_momentum:.6g}",
        TAG_BN_MOMENTUM_SOURCE: bn_source,
        TAG_BN_RECALIBRATION: str(cfg.train.bn_recalibration_batches),
        TAG_PEAK_LR: f"{peak_learning_rate(cfg.train):.6g}",
        TAG_STEPS_PER_EPOCH: str(steps_per_epoch),
        TAG_TOTAL_STEPS: str(total_steps),
        TAG_WARMUP_STEPS: str(round(cfg.train.warmup_epochs * steps_per_epoch)),
        TAG_PER_REPLICA_BATCH: str(per_replica),
        TAG_JIT: str(jit).lower(),
        TAG_PRECISION: cfg.train.precision,
        **reproducibility_tags(cfg.train, devices),
    }
    if cfg.train.target_minutes is not None:
        tags[TAG_TARGET_MINUTES] = f"{cfg.train.target_minutes:g}"
    tags.update(datasets.fingerprint.as_tags())
    run_log.set_tags(tags)
    run_log.log_inputs(datasets.inputs)  # the splits trained on and scored on, as datasets
    with phases.measure(BUILD):
        texts = {COSTS_TEXT: cost_table(costs), SUMMARY_TEXT: model_summary(model)}
    for text_name, text in texts.items():
        run_log.log_text(text_name, text)

    train_data = training_data(datasets.train, datasets.num_classes)
    val_data = validation_data(
        datasets.val, datasets.val_examples, cfg.train.batch_size, datasets.num_classes
    )

    store = CheckpointStore(
        checkpoint_dir if checkpoint_dir is not None else run_key.checkpoint_dir(cfg),
        keep=cfg.train.keep_checkpoints,
    )
    # The optimizer's slots are created in the scope when restoring. A damaged checkpoint falls
    # back to an older one, or to a start from scratch, in this same run (mnv1.training.resume).
    with phases.measure(CHECKPOINT), strategy.scope():
        state = resume_checkpoint(store, model, steps_per_epoch, run_log)
    start_epoch = state.epochs_done if state else 0
    start_step = state.step_in_epoch if state else 0
    run_log.set_tags(
        {schema.TAG_RESUMED_FROM_EPOCH: str(start_epoch), TAG_RESUMED_FROM_STEP: str(start_step)}
    )

    recalibration = None
    if cfg.train.bn_recalibration_batches:
        # Created before fit's own iterator: see recalibration_data.
        with phases.measure(EVALUATE):
            recalibration = iter(
                strategy.experimental_distribute_dataset(
                    recalibration_data(datasets.train, cfg.train.bn_recalibration_batches)
                )
            )
    bn_stats = BatchNormStats(model, strategy, recalibration, cfg.train.bn_recalibration_batches)
    epoch_metrics = EpochMetrics(run_log)
    throughput = Throughput(cfg.train.batch_size)
    checkpointing = Checkpointing(
        store, steps_per_epoch, cfg.train.checkpoint_every_steps, phases=phases
    )
    interactive = sys.stdout.isatty()
    callbacks: list[keras.callbacks.Callback] = [
        PhaseTiming(phases),  # first: see PhaseTiming
        StopOnNaN(lambda: float(optimizer.learning_rate)),
        throughput,
        BeforeEvaluation(bn_stats.prepare_for_evaluation),
        ValidationCount(datasets.val_examples),  # before the metrics are logged
        epoch_metrics,  # before checkpointing: see mnv1.training.callbacks
        checkpointing,
    ]
    if not interactive:
        callbacks.append(EpochLine(cfg.train.epochs))

    def fit(first_epoch: int, last_epoch: int, steps: int) -> None:
        with phases.measure(TRAIN):  # evaluation, checkpoints and tracking inside count apart
            model.fit(
                train_data,
                validation_data=val_data,
                initial_epoch=first_epoch,
                epochs=last_epoch,
                steps_per_epoch=steps,
                callbacks=callbacks,
                verbose=1 if interactive else 0,
                shuffle=False,  # the data layer shuffles; Keras cannot shuffle a tf.data stream
            )

    epoch = start_epoch
    if start_step and epoch < cfg.train.epochs:
        # Resumed mid-epoch: finish that epoch's remaining steps first.
        checkpointing.step_offset = start_step
        fit(epoch, epoch + 1, steps_per_epoch - start_step)
        epoch += 1
    if epoch < cfg.train.epochs:
        fit(epoch, cfg.train.epochs, steps_per_epoch)

    with phases.measure(EVALUATE):
        final = _final_metrics(model, val_data, datasets.val_examples, epoch_metrics, throughput)
    run_log.log_metrics(final)
    if cfg.tracking.log_model:
        example = next(iter(datasets.val))[0][:1]
        run_log.log_model(model, example.numpy())
    # After the model is logged, so its LiteRT exports join it on its LoggedModel.
    if cfg.export.enabled:  # LiteRT flatbuffers, int8 top-1, batch-1 latency (mnv1.export)
        export_cell(
            model, datasets.train, datasets.val, cfg.export, run_log, final[schema.METRIC_VAL_TOP1]
        )

    return RunResult(
        val_top1=final[schema.METRIC_VAL_TOP1],
        val_top5=final[schema.METRIC_VAL_TOP5],
        mult_adds=costs.mult_adds,
        params=costs.params,
        keras_params=costs.keras_params,
        train_images_per_sec=throughput.images_per_sec,
        epoch_seconds=throughput.epoch_seconds,
        epochs_done=cfg.train.epochs,
        resumed_from_epoch=start_epoch,
        replicas=replicas,
        val_examples=round(final[METRIC_VAL_EXAMPLES]),
    )


def _compiled_model(
    cfg: RunConfig,
    strategy: tf.distribute.Strategy,
    num_classes: int,
    steps_per_epoch: int,
    bn_momentum: float,
    jit: bool,
) -> tuple[keras.Model, keras.optimizers.Optimizer]:
    """Model, optimizer and metrics, all created inside the strategy's scope."""
    with strategy.scope():
        model = build_mobilenet_v1(
            alpha=cfg.model.alpha,
            resolution=cfg.model.resolution,
            num_classes=num_classes,
            variant=cfg.model.variant,
            dropout=cfg.model.dropout,
            activation=cfg.model.activation,
            bn_momentum=bn_momentum,
            sync_bn=cfg.model.sync_bn,
        )
        optimizer = make_optimizer(cfg.train, steps_per_epoch, model)
        model.compile(
            optimizer=optimizer,
            loss=make_loss(cfg.train),
            weighted_metrics=make_metrics(cfg.train),
            jit_compile=jit,
        )
    return model, optimizer


def _final_metrics(
    model: keras.Model,
    val_data: tf.data.Dataset,
    val_examples: int,
    epoch_metrics: EpochMetrics,
    throughput: Throughput,
) -> dict[str, float]:
    """Final validation numbers (the last epoch's) and this process's throughput."""
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
