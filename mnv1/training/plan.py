"""The plan of one training run: everything ``mnv1.training.run`` decides before it builds anything.

``plan_run`` is pure: from the config, what the strategy offers (replicas, devices) and what the
data holds (examples, classes, fingerprint tags) it derives the budget (steps per epoch, total
steps, warm-up), the BatchNorm momentum, XLA, and every tag the run sets before training. The
same plan drives ``run_training`` and the plan's probe (``mnv1.training.probe``), so the probe
builds exactly the model, optimizer and compile a cell builds.

The tags' names not in ``tracking/schema.py`` are defined here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mnv1.config import RunConfig
from mnv1.tracking import schema
from mnv1.training.recipe import bn_momentum_for, peak_learning_rate, resolve_jit
from mnv1.training.repro import reproducibility_tags
from mnv1.training.strategy import check_global_batch

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


@dataclass(frozen=True)
class Platform:
    """What the process offers the run: its strategy's replicas and devices, and the versions
    of the libraries it trains with (tags only: nothing in the plan depends on them)."""

    strategy: str
    """The strategy's class name (``OneDeviceStrategy``, ``MirroredStrategy`` ...)."""
    replicas: int
    devices: tuple[str, ...]
    tf_version: str
    keras_version: str
    cuda_version: str
    device_kind: str
    """``GPU: <name>`` or ``CPU: <model name>`` (``mnv1.training.repro.device_kind``)."""


@dataclass(frozen=True)
class RunPlan:
    """One run, decided: the cell it trains, its budget, BatchNorm and XLA settings, its tags."""

    cfg: RunConfig
    num_classes: int
    replicas: int
    per_replica_batch: int
    steps_per_epoch: int
    bn_momentum: float
    bn_momentum_source: str
    """``config`` (``model.bn_momentum`` set) or ``step_budget`` (derived from total steps)."""
    jit: bool
    tags: Mapping[str, str]

    @property
    def total_steps(self) -> int:
        return self.cfg.train.epochs * self.steps_per_epoch


def planned_train_images(cfg: RunConfig) -> int | None:
    """How many training images the run will read: what the data layer sizes its cache by.

    None for whole passes over the split (cached when there is more than one epoch); 0 for one
    pass, where nothing is read twice.
    """
    if cfg.train.steps_per_epoch:
        return cfg.train.epochs * cfg.train.steps_per_epoch * cfg.train.batch_size
    return 0 if cfg.train.epochs == 1 else None


def plan_run(
    cfg: RunConfig,
    platform: Platform,
    train_examples: int,
    num_classes: int,
    data_tags: Mapping[str, str] | None = None,
) -> RunPlan:
    """The run's plan. Raises ValueError when the batch does not split over the replicas or the
    split holds less than one global batch (and ``train.steps_per_epoch`` is not set)."""
    train = cfg.train
    per_replica = check_global_batch(train.batch_size, platform.replicas)
    steps_per_epoch = train.steps_per_epoch or train_examples // train.batch_size
    if steps_per_epoch < 1:
        raise ValueError(
            f"the training split has {train_examples} examples, fewer than one global "
            f"batch (train.batch_size={train.batch_size}); lower train.batch_size or set "
            "train.steps_per_epoch"
        )
    total_steps = train.epochs * steps_per_epoch
    bn_momentum, bn_source = cfg.model.bn_momentum, "config"
    if bn_momentum is None:
        bn_momentum, bn_source = bn_momentum_for(total_steps), "step_budget"
    jit = resolve_jit(train, on_gpu=any("GPU" in d.upper() for d in platform.devices))
    tags = {
        schema.TAG_VARIANT: cfg.model.variant,
        schema.TAG_REPLICAS: str(platform.replicas),
        schema.TAG_STRATEGY: platform.strategy,
        TAG_TF_VERSION: platform.tf_version,
        TAG_KERAS_VERSION: platform.keras_version,
        TAG_CUDA_VERSION: platform.cuda_version,
        TAG_DEVICES: ",".join(platform.devices),
        TAG_BN_BATCH_STATS: "synchronized" if cfg.model.sync_bn else "per_replica",
        TAG_BN_MOMENTUM: f"{bn_momentum:.6g}",
        TAG_BN_MOMENTUM_SOURCE: bn_source,
        TAG_BN_RECALIBRATION: str(train.bn_recalibration_batches),
        TAG_PEAK_LR: f"{peak_learning_rate(train):.6g}",
        TAG_STEPS_PER_EPOCH: str(steps_per_epoch),
        TAG_TOTAL_STEPS: str(total_steps),
        TAG_WARMUP_STEPS: str(round(train.warmup_epochs * steps_per_epoch)),
        TAG_PER_REPLICA_BATCH: str(per_replica),
        TAG_JIT: str(jit).lower(),
        TAG_PRECISION: train.precision,
        **reproducibility_tags(train, platform.devices, kind=platform.device_kind),
    }
    if train.target_minutes is not None:
        tags[TAG_TARGET_MINUTES] = f"{train.target_minutes:g}"
    tags.update(data_tags or {})
    return RunPlan(
        cfg=cfg,
        num_classes=num_classes,
        replicas=platform.replicas,
        per_replica_batch=per_replica,
        steps_per_epoch=steps_per_epoch,
        bn_momentum=bn_momentum,
        bn_momentum_source=bn_source,
        jit=jit,
        tags=tags,
    )
