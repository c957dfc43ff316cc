"""Keras callbacks of one training run: metrics, throughput, NaN stop, progress, checkpoints.

Order matters in the list ``mnv1.training.run`` builds: per-epoch metrics are sent to the run log
before the epoch's checkpoint is written, so a process killed between the two retrains that
epoch and its metrics are not duplicated (already-logged steps are skipped), rather than
resuming past an epoch whose metrics were never logged.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import keras

from mnv1.runlog import RunLog
from mnv1.timing import CHECKPOINT, EVALUATE, TRACE, PhaseRecorder
from mnv1.training.checkpoint import CheckpointState, CheckpointStore

# Keras log key → run log metric name (tracking/schema.py PER_EPOCH_METRICS). Losses come from
# the sample-weighted ``xent`` metric: exact on a padded validation set, equal to Keras's
# ``loss`` on full training batches (weight decay is decoupled, so no penalty term is added).
EPOCH_METRICS: dict[str, str] = {
    "xent": "loss",
    "top1": "top1",
    "val_xent": "val_loss",
    "val_top1": "val_top1",
    "val_top5": "val_top5",
}


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


class IncompleteEvaluation(RuntimeError):
    """An evaluation counted a different number of validation examples than the split holds."""


def check_val_examples(counted: float, expected: int, when: str) -> None:
    """Raise ``IncompleteEvaluation`` unless an evaluation counted exactly ``expected`` examples.

    Keras stops an evaluation whose input ends early with only a warning ("Your input ran out
    of data") and reports the metrics of the batches it saw; the declared cardinality of the
    validation set does not catch it either, since ``tf.distribute`` removes
    ``assert_cardinality`` from the pipelines it rewrites. A wrong count fails the run instead of
    being logged as a validation result.
    """
    if round(counted) != expected:
        raise IncompleteEvaluation(
            f"{when}: evaluation counted {counted:g} validation examples, the validation split "
            f"holds {expected}; the validation input ended early or yielded extra examples, so "
            "its metrics are not logged"
        )


class EpochMetrics(keras.callbacks.Callback):
    """Per-epoch metrics to the run log at step = epoch number (1..N), never twice per step."""

    def __init__(self, run_log: RunLog) -> None:
        super().__init__()
        self.run_log = run_log
        self.logged = {
            name: set(run_log.logged_metric_steps(name)) for name in EPOCH_METRICS.values()
        }
        self.last: dict[str, float] = {}
        self.last_val_examples: float | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        step = epoch + 1
        values = {name: float(logs[key]) for key, name in EPOCH_METRICS.items() if key in logs}
        self.last = values
        if "val_examples" in logs:
            self.last_val_examples = float(logs["val_examples"])
        fresh = {k: v for k, v in values.items() if step not in self.logged[k]}
        if fresh:
            self.run_log.log_metrics(fresh, step=step)
            for key in fresh:
                self.logged[key].add(step)


class Throughput(keras.callbacks.Callback):
    """Steady-state training images/s and epoch wall seconds.

    In every epoch the first ``skip`` steps are left out (tracing and compilation in the first
    epoch, iterator start-up in later ones); the rate is images over seconds from the end of
    step ``skip`` to the end of the epoch's last step, summed over epochs. Evaluation and
    BatchNorm recalibration happen after the last step and never count. ``epoch_seconds`` is the
    mean wall time of an epoch (training and evaluation), the first epoch of the process left out
    when there are others, since it includes tracing.
    """

    def __init__(self, global_batch: int, skip: int = 3) -> None:
        super().__init__()
        self.global_batch = global_batch
        self.skip = skip
        self.images = 0
        self.seconds = 0.0
        self.epoch_durations: list[float] = []
        self._epoch_start = 0.0
        self._marks: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start = time.perf_counter()
        self._marks = []

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self._marks.append(time.perf_counter())

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_durations.append(time.perf_counter() - self._epoch_start)
        # The clock starts at the end of step ``skip``; a short epoch keeps at least its last
        # step (a one-step epoch has no start mark and is not counted).
        steps = len(self._marks)
        skip = min(self.skip, steps - 1)
        if skip >= 1:
            self.images += (steps - skip) * self.global_batch
            self.seconds += self._marks[-1] - self._marks[skip - 1]

    @property
    def images_per_sec(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("nan")

    @property
    def epoch_seconds(self) -> float:
        durations = self.epoch_durations[1:] or self.epoch_durations
        return sum(durations) / len(durations) if durations else float("nan")


class StopOnNaN(keras.callbacks.Callback):
    """Stop the run with a clear reason as soon as the training loss is not finite."""

    def __init__(self, learning_rate: Callable[[], float]) -> None:
        super().__init__()
        self.learning_rate = learning_rate
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            raise TrainingDiverged(
                f"training loss became {loss} at epoch {self._epoch + 1}, step {batch + 1} "
                f"(learning rate {self.learning_rate():.4g}); the run is stopped. Lower "
                "train.learning_rate, add train.warmup_epochs or use precision=float32."
            )


class EpochLine(keras.callbacks.Callback):
    """One line per epoch, for logs that are not a terminal (Keras's bar is for terminals)."""

    def __init__(self, epochs: int, stream: TextIO | None = None) -> None:
        super().__init__()
        self.epochs = epochs
        self.stream = stream or sys.stdout
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        parts = [f"epoch {epoch + 1}/{self.epochs}", f"{time.perf_counter() - self._start:.1f}s"]
        parts += [
            f"{name} {float(logs[key]):.4f}" for key, name in EPOCH_METRICS.items() if key in logs
        ]
        print("  ".join(parts), file=self.stream, flush=True)


class ValidationCount(keras.callbacks.Callback):
    """Fail the run when an epoch's evaluation did not count every validation example once.

    Put it before ``EpochMetrics`` in the callback list, so a wrong number is never logged.
    """

    def __init__(self, expected: int) -> None:
        super().__init__()
        self.expected = expected

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        counted = (logs or {}).get("val_examples")
        if counted is not None:
            check_val_examples(float(counted), self.expected, f"epoch {epoch + 1}")


class BeforeEvaluation(keras.callbacks.Callback):
    """Run a preparation (BatchNorm recalibration and replica sync) before every evaluation."""

    def __init__(self, prepare: Callable[[], None]) -> None:
        super().__init__()
        self.prepare = prepare

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.prepare()


class Checkpointing(keras.callbacks.Callback):
    """A checkpoint at the end of every epoch and, optionally, every N training steps.

    ``step_offset`` is the number of steps of the current epoch already done before this
    ``fit`` call (a run resumed from a mid-epoch checkpoint finishes that epoch first).
    """

    def __init__(
        self,
        store: CheckpointStore,
        steps_per_epoch: int,
        every_steps: int | None = None,
        phases: PhaseRecorder | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.steps_per_epoch = steps_per_epoch
        self.every_steps = every_steps
        self.phases = phases or PhaseRecorder()
        self.step_offset = 0
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.every_steps:
            return
        step_in_epoch = self.step_offset + batch + 1
        global_step = self._epoch * self.steps_per_epoch + step_in_epoch
        # The epoch's last step is saved by on_epoch_end, after evaluation.
        if global_step % self.every_steps == 0 and step_in_epoch < self.steps_per_epoch:
            with self.phases.measure(CHECKPOINT):
                self.store.save(
                    self.model, CheckpointState(self._epoch, step_in_epoch, self.steps_per_epoch)
                )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.step_offset = 0
        with self.phases.measure(CHECKPOINT):
            self.store.save(self.model, CheckpointState(epoch + 1, 0, self.steps_per_epoch))


class PhaseTiming(keras.callbacks.Callback):
    """Count ``fit``'s first training step as phase ``trace`` and its validation passes as
    ``evaluate`` (see ``mnv1.timing``).

    Put it first in the callback list: Keras calls hooks in list order, so its ``on_test_begin``
    opens ``evaluate`` before ``BeforeEvaluation`` re-estimates BatchNorm statistics, which then
    counts as evaluation too.
    """

    def __init__(self, phases: PhaseRecorder) -> None:
        super().__init__()
        self.phases = phases

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        # The first step of a fit traces and compiles the train function before running it.
        self.phases.begin(TRACE)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.phases.is_open(TRACE):
            self.phases.end(TRACE)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self.phases.is_open(TRACE):  # a fit that ran no step
            self.phases.end(TRACE)

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.phases.begin(EVALUATE)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        self.phases.end(EVALUATE)
