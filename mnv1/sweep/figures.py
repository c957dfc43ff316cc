"""What a cell costs, from where one run's time went: one arithmetic for the probe's short run and
for a finished cell of this host.

Both record the same metrics (``mnv1.timing``): ``time_<phase>_s`` of every phase of the worker,
and ``train_images_per_sec``, the steady training rate. ``Figures`` splits them into the parts the
plan scales to a cell of another budget, epoch count or validation size::

    cell = start-up                          process start and imports (per cell)
         + once                              data, build, tracking, the rest of the worker, its
                                             exit, the first step beyond a steady one (per cell)
         + epochs × per epoch                checkpoints, and training time beyond its steady steps
         + epochs × eval batches × per batch evaluation, spread over its batches (validation and
                                             BatchNorm re-estimation; its tracing included)
         + epochs × steps per epoch × step   steady training steps

For the run it was measured on, this adds up to exactly what that run took (its phases plus its
exit); for another budget only the training steps change, for more epochs or validation images
the per-epoch and per-batch parts scale with them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from mnv1.timing import (
    BUILD,
    CHECKPOINT,
    DATA,
    EVALUATE,
    IMPORT,
    METRIC_CELL,
    PHASES,
    PROCESS_START,
    TRACE,
    TRACKING,
    TRAIN,
    WORKER_OTHER,
    metric_name,
)
from mnv1.tracking.schema import METRIC_TRAIN_IPS


@dataclass(frozen=True)
class RunShape:
    """What a measured run did: its epochs × steps of ``batch`` images, and the batches each
    evaluation read (validation and BatchNorm re-estimation)."""

    epochs: int
    steps_per_epoch: int
    batch: int
    eval_batches: int


def eval_batches(val_examples: int, batch: int, bn_batches: int) -> int:
    """Batches one evaluation reads: the validation images in global batches, then the
    BatchNorm re-estimation batches."""
    return math.ceil(val_examples / batch) + bn_batches


@dataclass(frozen=True)
class Figures:
    """A cell's costs in the parts the plan scales (see the module docstring)."""

    startup_s: float
    once_s: float
    per_epoch_s: float
    eval_batch_s: float
    step_s: float

    def fixed_s(self, epochs: int, batches: int | None) -> float:
        """Seconds that do not depend on the steps per epoch, for ``epochs`` epochs whose
        evaluations read ``batches`` batches each (None: unknown, counted as none)."""
        per_epoch = self.per_epoch_s + (batches or 0) * self.eval_batch_s
        return self.startup_s + self.once_s + epochs * per_epoch

    def per_step_s(self, epochs: int) -> float:
        """Seconds one more step per epoch adds."""
        return epochs * self.step_s


def _phase(metrics: Mapping[str, float], phase: str) -> float:
    return float(metrics.get(metric_name(phase), 0.0))


def steady_step_s(metrics: Mapping[str, float], shape: RunShape) -> float:
    """One steady training step: from the run's steady rate, else its training phase spread
    over the steps after the first (the first is tracing)."""
    ips = metrics.get(METRIC_TRAIN_IPS)
    if ips is not None and math.isfinite(ips) and ips > 0:
        return shape.batch / float(ips)
    steps = shape.epochs * shape.steps_per_epoch
    return _phase(metrics, TRAIN) / (steps - 1) if steps > 1 else 0.0


def from_metrics(metrics: Mapping[str, float], shape: RunShape, exit_s: float) -> Figures:
    """The figures of one run from its phase metrics, its shape, and the seconds after its
    phases: the worker's exit and, for a cell, its orchestration."""
    step = steady_step_s(metrics, shape)
    steps = shape.epochs * shape.steps_per_epoch
    train_rest = max(0.0, _phase(metrics, TRAIN) - (steps - 1) * step)
    once = sum(_phase(metrics, p) for p in (DATA, BUILD, TRACKING, WORKER_OTHER, TRACE))
    evaluate = _phase(metrics, EVALUATE)
    per_epoch = (_phase(metrics, CHECKPOINT) + train_rest) / shape.epochs
    if shape.eval_batches:
        eval_batch = evaluate / (shape.epochs * shape.eval_batches)
    else:
        eval_batch, per_epoch = 0.0, per_epoch + evaluate / shape.epochs
    return Figures(
        startup_s=_phase(metrics, PROCESS_START) + _phase(metrics, IMPORT),
        once_s=once + exit_s - step,
        per_epoch_s=per_epoch,
        eval_batch_s=eval_batch,
        step_s=step,
    )


def cell_exit_s(metrics: Mapping[str, float]) -> float:
    """What a finished cell took beyond its worker's phases (``time_cell_s``, as its
    orchestrator timed it): the worker's last write and exit, and the orchestration around it."""
    phases = sum(_phase(metrics, p) for p in PHASES)
    return max(0.0, float(metrics.get(METRIC_CELL, phases)) - phases)


def mix(lo: Figures, hi: Figures, t: float) -> Figures:
    """The figures a fraction ``t`` of the way from ``lo`` to ``hi`` (never below zero when
    ``t`` lies outside 0..1)."""
    return Figures(
        **{
            f.name: max(0.0, getattr(lo, f.name) + (getattr(hi, f.name) - getattr(lo, f.name)) * t)
            for f in fields(Figures)
        }
    )


def scaled(figures: Figures, ratio: float) -> Figures:
    """The figures of a shape with ``ratio`` times the work per step: steps and evaluation
    batches scale with it, the rest stays."""
    return replace(
        figures, step_s=figures.step_s * ratio, eval_batch_s=figures.eval_batch_s * ratio
    )
