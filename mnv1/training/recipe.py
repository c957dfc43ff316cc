"""The training recipe: optimizer, learning-rate schedule, weight decay, loss, metrics, precision.

Defaults follow the paper ("RMSprop with asynchronous gradient descent similar to Inception V3")
and the TF-slim MobileNet training script: RMSprop with decay ρ=0.9, momentum 0.9 and ε=1.0
(Keras 3's RMSprop applies ε inside the square root and momentum to the scaled step, exactly as
TF1's ``RMSPropOptimizer`` that TF-slim used), label smoothing 0.1, weight decay 4e-5.

Rules, each chosen so a short laptop run and a long GPU run read the same way:

* **Learning rate scales linearly with the global batch** (Goyal et al. 2017):
  ``peak = train.learning_rate × train.batch_size / train.lr_reference_batch``.
* **Schedule**: a linear warm-up over ``train.warmup_epochs`` from ``peak / warmup_steps`` to the
  peak, then ``cosine`` (to zero exactly at the last step of the run), ``exponential``
  (``× train.lr_decay_rate`` per epoch, continuously) or ``constant``. The schedule is built
  from the run's real step count, so decay always reaches the end of the run, however short.
* **Weight decay** is the optimizer's decoupled decay (``w ← w − lr·λ·w`` every step) at
  ``train.weight_decay`` for convolution and classifier kernels, ``train.depthwise_weight_decay``
  for depthwise kernels (the paper: "very little or no weight decay (l2 regularization) on the
  depthwise filters since there are so few parameters in them"), and none for BatchNorm γ/β and
  biases. For SGD this is exactly TF-slim's L2 term ``λ/2·‖w‖²``; for RMSprop with ε=1.0 the
  denominator ``sqrt(ms + ε)`` stays close to 1, so it is close to it. It is not an L2 loss
  because Keras 3 does not scale regularisation losses by the replica count under
  ``MirroredStrategy`` (the penalty would grow with the number of replicas), while the
  optimizer decays each mirrored variable once.
* **BatchNorm momentum**, when ``model.bn_momentum`` is None, is tied to the step budget so the
  moving statistics average over roughly the last tenth of the run: ``1 − 10 / total_steps``,
  kept in [0.9, 0.99]. (Keras's fixed 0.99 lags the weights of a run of a few hundred steps,
  and validation then reads near chance.) ``mnv1.training.batchnorm`` also re-estimates the
  statistics
  before every evaluation.
* **Precision**: ``float32``, ``mixed_float16`` (Keras wraps the optimizer in a loss scaler)
  or ``mixed_bfloat16``; the classifier's softmax stays float32 (``mnv1.model``).
* **XLA**: ``train.jit_compile=auto`` compiles on GPU only: on CPU it made training 4× slower.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from mnv1.config import ConfigError, TrainConfig, check, rule

BN_MOMENTUM_RANGE = (0.9, 0.99)
BN_WINDOW_SHARE = 10  # the moving average spans about 1/10 of the run's steps


def check_train_config(train: TrainConfig) -> None:
    """Reject bad training settings before anything is built: ConfigError (a ValueError) naming
    each key, its value and what is allowed, by the same rule table the sweep validates with."""
    check(train, "train")


def peak_learning_rate(train: TrainConfig) -> float:
    """``train.learning_rate`` scaled linearly from ``lr_reference_batch`` to the global batch."""
    return train.learning_rate * (train.batch_size / train.lr_reference_batch)


def bn_momentum_for(total_steps: int) -> float:
    """BatchNorm momentum whose moving average spans about a tenth of the run (see module doc)."""
    low, high = BN_MOMENTUM_RANGE
    return min(high, max(low, 1.0 - BN_WINDOW_SHARE / max(1, total_steps)))


def resolve_jit(train: TrainConfig, on_gpu: bool) -> bool:
    """``train.jit_compile``: auto means XLA on GPU only."""
    value = str(train.jit_compile).lower()
    return on_gpu if value == "auto" else value == "true"


def apply_precision(train: TrainConfig) -> None:
    """Set the Keras dtype policy; must run before the model is built."""
    keras.mixed_precision.set_dtype_policy(train.precision)


@keras.saving.register_keras_serializable(package="mnv1")
class WarmupDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak``, then cosine / exponential / constant to the end of the run."""

    def __init__(
        self,
        peak: float,
        total_steps: int,
        warmup_steps: int = 0,
        kind: str = "cosine",
        decay_rate: float = 0.98,
        steps_per_epoch: int = 1,
    ) -> None:
        problem = rule("train.schedule").check(kind)
        if problem is not None:
            raise ConfigError([problem])
        if not 0 <= warmup_steps < total_steps:
            raise ValueError(
                f"warm-up of {warmup_steps} steps must be shorter than the run "
                f"({total_steps} steps); lower train.warmup_epochs"
            )
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.kind = kind
        self.decay_rate = float(decay_rate)
        self.steps_per_epoch = int(steps_per_epoch)

    def __call__(self, step: Any) -> Any:
        step = ops.cast(step, "float32")
        # Steps count from 0: the first update uses peak / warmup_steps, the last warm-up
        # update the full peak.
        warm = self.peak * (step + 1.0) / max(1, self.warmup_steps)
        after = ops.maximum(step - self.warmup_steps, 0.0)
        if self.kind == "cosine":
            progress = ops.minimum(after / max(1, self.total_steps - self.warmup_steps), 1.0)
            decayed = 0.5 * self.peak * (1.0 + ops.cos(math.pi * progress))
        elif self.kind == "exponential":
            decayed = self.peak * ops.power(self.decay_rate, after / self.steps_per_epoch)
        else:
            decayed = self.peak * ops.ones_like(step)
        return ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self) -> dict[str, Any]:
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "kind": self.kind,
            "decay_rate": self.decay_rate,
            "steps_per_epoch": self.steps_per_epoch,
        }


class _DecayRules:
    """Decoupled weight decay at a rate per variable (Keras optimizers have one rate for all).

    Variables of rank ≤ 1 (BatchNorm γ and β, biases) never decay; the kernels named by
    ``set_depthwise_kernels`` decay at ``depthwise_weight_decay``; every other kernel at
    ``weight_decay``. (Variable names cannot tell a depthwise kernel apart: Keras 3 calls it
    ``kernel`` like any other.)

    Keras's ``_apply_weight_decay`` reads ``self.weight_decay`` while it runs (under
    ``tf.function`` at trace time), so each group of variables is decayed by the parent method
    with ``weight_decay`` set to that group's rate; the distributed update path stays Keras's own.
    """

    weight_decay: float | None
    _var_key: Any

    def __init__(self, *args: Any, depthwise_weight_decay: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.depthwise_weight_decay = float(depthwise_weight_decay)
        self._depthwise_keys: set[Any] = set()

    def set_depthwise_kernels(self, kernels: list[Any]) -> None:
        """Name the depthwise kernels (before the first update)."""
        self._depthwise_keys = {self._var_key(v) for v in kernels}

    def decay_rate(self, variable: Any) -> float:
        if len(variable.shape) <= 1:
            return 0.0
        if self._var_key(variable) in self._depthwise_keys:
            return self.depthwise_weight_decay
        return self.weight_decay or 0.0

    def _apply_weight_decay(self, variables: list[Any]) -> None:
        base = self.weight_decay
        if base is None:
            return
        groups: dict[float, list[Any]] = {}
        for variable in variables:
            rate = self.decay_rate(variable)
            if rate > 0.0:
                groups.setdefault(rate, []).append(variable)
        try:
            for rate, group in groups.items():
                self.weight_decay = rate
                super()._apply_weight_decay(group)  # type: ignore[misc]
        finally:
            self.weight_decay = base

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()  # type: ignore[misc]
        config["depthwise_weight_decay"] = self.depthwise_weight_decay
        return config


@keras.saving.register_keras_serializable(package="mnv1")
class RMSprop(_DecayRules, keras.optimizers.RMSprop):
    """Keras RMSprop with mnv1's per-variable weight-decay rules."""


@keras.saving.register_keras_serializable(package="mnv1")
class SGD(_DecayRules, keras.optimizers.SGD):
    """Keras SGD (with momentum) with mnv1's per-variable weight-decay rules."""


def make_schedule(train: TrainConfig, steps_per_epoch: int) -> WarmupDecay:
    return WarmupDecay(
        peak=peak_learning_rate(train),
        total_steps=train.epochs * steps_per_epoch,
        warmup_steps=round(train.warmup_epochs * steps_per_epoch),
        kind=train.schedule,
        decay_rate=train.lr_decay_rate,
        steps_per_epoch=steps_per_epoch,
    )


def depthwise_kernels(model: keras.Model) -> list[Any]:
    return [
        layer.kernel
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.DepthwiseConv2D)
    ]


def make_optimizer(
    train: TrainConfig, steps_per_epoch: int, model: keras.Model | None = None
) -> keras.optimizers.Optimizer:
    """The optimizer with its schedule and decay rules; create it inside ``strategy.scope()``.

    ``model`` tells the optimizer which kernels are depthwise (without it every kernel decays
    at ``train.weight_decay``).
    """
    schedule = make_schedule(train, steps_per_epoch)
    # Keras skips decay entirely when weight_decay is None; any positive rate turns the
    # per-variable rules on (the kernel rate itself may be 0 when only depthwise decays).
    decay = train.weight_decay if (train.weight_decay or train.depthwise_weight_decay) else None
    optimizer: RMSprop | SGD
    if train.optimizer == "rmsprop":
        optimizer = RMSprop(
            learning_rate=schedule,
            rho=train.rmsprop_rho,
            momentum=train.momentum,
            epsilon=train.rmsprop_epsilon,
            weight_decay=decay,
            depthwise_weight_decay=train.depthwise_weight_decay,
        )
    else:
        optimizer = SGD(
            learning_rate=schedule,
            momentum=train.momentum,
            weight_decay=decay,
            depthwise_weight_decay=train.depthwise_weight_decay,
        )
    if model is not None:
        optimizer.set_depthwise_kernels(depthwise_kernels(model))
    return optimizer


@keras.saving.register_keras_serializable(package="mnv1")
class ExampleCount(keras.metrics.Metric):
    """How many examples a pass counted: the sum of sample weights (padding weighs 0)."""

    def __init__(self, name: str = "examples", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        if sample_weight is None:
            n = ops.cast(ops.shape(y_true)[0], "float32")
        else:
            n = ops.sum(ops.cast(sample_weight, "float32"))
        self.count.assign_add(n)

    def result(self) -> Any:
        return self.count

    def reset_state(self) -> None:
        self.count.assign(0.0)


def make_loss(train: TrainConfig) -> keras.losses.Loss:
    """Cross-entropy on one-hot labels, with ``train.label_smoothing``."""
    return keras.losses.CategoricalCrossentropy(label_smoothing=train.label_smoothing)


def make_metrics(train: TrainConfig) -> list[keras.metrics.Metric]:
    """Sample-weighted metrics (compile them as ``weighted_metrics``): padding never counts.

    ``xent`` is the loss without any padding dilution: Keras's own ``loss`` log averages batch
    means, so a padded final validation batch would count its zero-weight rows.
    """
    return [
        keras.metrics.CategoricalAccuracy(name="top1"),
        keras.metrics.TopKCategoricalAccuracy(k=5, name="top5"),
        keras.metrics.CategoricalCrossentropy(name="xent", label_smoothing=train.label_smoothing),
        ExampleCount(name="examples"),
    ]
