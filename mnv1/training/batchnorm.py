"""BatchNorm statistics that validate honestly, at any training budget and any replica count.

Two problems make a short run's validation read near chance, and one makes replicas disagree:

1. The moving mean/variance lag the weights: with momentum 0.99 they average the last ~100
   steps, most of a short run, while the weights moved a lot. ``recalibrate`` re-estimates them
   before each evaluation on ``train.bn_recalibration_batches`` training batches run through the
   current weights in training mode, as fvcore's PreciseBN does: the statistics become the
   plain average of the per-batch means and variances.
2. Under ``MirroredStrategy`` Keras 3 writes each replica's moving statistics into that
   replica's copy of the variable only (aggregation ``none``): the copies drift apart, each
   replica evaluates with its own, and a checkpoint keeps replica 0's. ``sync`` replaces every
   copy with the average over replicas (run before each evaluation, after recalibration).

Batch statistics during training stay per replica unless ``model.sync_bn`` is set (Keras's
synchronised BatchNorm); the run logs which (tag ``mnv1.bn_batch_stats``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf


def batchnorm_layers(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    return [
        layer
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]


def _replica_values(strategy: tf.distribute.Strategy, variable: Any) -> list[np.ndarray]:
    value = getattr(variable, "value", variable)
    return [np.asarray(v) for v in strategy.experimental_local_results(value)]


class BatchNormStats:
    """Re-estimates and synchronises the moving statistics of a model's BatchNorm layers."""

    def __init__(
        self,
        model: keras.Model,
        strategy: tf.distribute.Strategy,
        batches: Iterator[Any] | None,
        num_batches: int,
    ) -> None:
        """``batches`` iterates distributed batches of training images (``mnv1.training.run``)."""
        self.model = model
        self.strategy = strategy
        self.layers = batchnorm_layers(model)
        self.batches = batches
        self.num_batches = num_batches if batches is not None else 0
        self._step: Any = None

    def _forward(self, images: Any) -> None:
        self.model(images, training=True)

    def _make_step(self) -> Any:
        # Named for what it does: its traces show under this name (mnv1.training.traces).
        @tf.function
        def recalibration_step(images: Any) -> None:
            self.strategy.run(self._forward, args=(images,))

        return recalibration_step

    def recalibrate(self) -> None:
        """Set the moving statistics to the average of ``num_batches`` training batches."""
        if not self.num_batches or not self.layers:
            return
        saved = [layer.momentum for layer in self.layers]
        sums: list[list[np.ndarray]] | None = None
        try:
            # Momentum 0: after each forward pass the moving statistics hold exactly that
            # batch's (per-replica) mean and variance; the sums below average them. The step
            # is traced while momentum is 0, so it keeps 0 and training's step keeps its own.
            for layer in self.layers:
                layer.momentum = 0.0
            if self._step is None:
                self._step = self._make_step()
            for _ in range(self.num_batches):
                assert self.batches is not None
                self._step(next(self.batches))
                values = [
                    [
                        *_replica_values(self.strategy, layer.moving_mean),
                        *_replica_values(self.strategy, layer.moving_variance),
                    ]
                    for layer in self.layers
                ]
                sums = (
                    values
                    if sums is None
                    else [
                        [a + b for a, b in zip(s, v, strict=True)]
                        for s, v in zip(sums, values, strict=True)
                    ]
                )
        finally:
            for layer, momentum in zip(self.layers, saved, strict=True):
                layer.momentum = momentum
        assert sums is not None
        replicas = self.strategy.num_replicas_in_sync
        for layer, parts in zip(self.layers, sums, strict=True):
            means, variances = parts[:replicas], parts[replicas:]
            layer.moving_mean.assign(np.mean(means, axis=0) / self.num_batches)
            layer.moving_variance.assign(np.mean(variances, axis=0) / self.num_batches)

    def sync(self) -> None:
        """Give every replica the replica-average moving statistics."""
        if self.strategy.num_replicas_in_sync == 1:
            return
        for layer in self.layers:
            for variable in (layer.moving_mean, layer.moving_variance):
                variable.assign(np.mean(_replica_values(self.strategy, variable), axis=0))

    def prepare_for_evaluation(self) -> None:
        """Recalibrate (when configured), then make the replicas agree."""
        if self.num_batches:
            self.recalibrate()  # assigns the replica average: already in sync
        else:
            self.sync()
