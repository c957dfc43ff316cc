"""A stand-in peer for ``mnv1.bench.gpu`` where PyTorch and timm are not installed: the harness
times any ``NAME=module:function`` implementation the same way
(``--peer standin=gpu_standin:make``). One step is a dense layer's forward and backward
products on a resident batch, in NumPy."""

from __future__ import annotations

import numpy as np


class StandIn:
    def __init__(self, alpha: float, resolution: int, batch: int, classes: int) -> None:
        rng = np.random.default_rng(0)
        features = max(1, int(resolution * resolution * 3 * alpha) // 16)
        self.x = rng.standard_normal((batch, features), dtype=np.float32)
        self.w = rng.standard_normal((features, classes), dtype=np.float32)

    def step(self) -> None:
        grad = self.x @ self.w  # forward
        self.w -= 1e-6 * (self.x.T @ grad)  # backward for the weights, and the update

    def sync(self) -> None:
        pass  # NumPy is synchronous


def make(alpha: float, resolution: int, precision: str, batch: int, classes: int) -> StandIn:
    return StandIn(alpha, resolution, batch, classes)
