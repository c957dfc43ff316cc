"""Mult-adds and parameters of a built Keras model, counted layer by layer.

The counts walk the layers of the model that is actually built (never a second table of the
architecture), so they always describe the network that trains. Pure Keras 3: no ``tf.`` call.

Two parameter conventions:

* **paper** (the paper's convention "B"): the weights of convolutions, depthwise convolutions and
  the fully connected classifier; no biases, no BatchNorm values. This is the convention that
  reproduces every parameter figure the paper prints (4,209,088 for 1.0 MobileNet).
* **keras**: ``model.count_params()``, i.e. every weight including the classifier bias and the
  four BatchNorm values per channel (γ, β, moving mean, moving variance): 4,253,864 for 1.0,
  the same as ``keras.applications.MobileNet``.

Mult-adds (multiply-accumulates, one fused multiply and add) count the weighted layers only:
a convolution costs ``kernel elements × output positions``, i.e. ``k·k·C_in·C_out·H_out·W_out``
(``k·k·C·H_out·W_out`` for a depthwise one) and the classifier ``C_in × classes``. BatchNorm,
biases, activations, pooling and softmax cost nothing, as in the paper (a counter that charged
BatchNorm would add 5.04M at 1.0-224).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import keras
from keras import layers

from mnv1.model import build_mobilenet_v1

# The paper's Table 2 layer types, in its printed order.
CONV_1X1 = "Conv 1x1"
CONV_DW_3X3 = "Conv DW 3x3"
CONV_3X3 = "Conv 3x3"
FULLY_CONNECTED = "Fully Connected"
TABLE2_TYPES: tuple[str, ...] = (CONV_1X1, CONV_DW_3X3, CONV_3X3, FULLY_CONNECTED)

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class LayerCost:
    """The cost of one layer; shapes exclude the batch axis."""

    name: str
    type: str
    """A Table 2 type for weighted layers (``Conv 1x1`` …), else the Keras class name."""
    input_shape: Shape
    output_shape: Shape
    params: int
    """Parameters under the paper convention (kernel weights only)."""
    keras_params: int
    """``layer.count_params()``: every weight, biases and BatchNorm statistics included."""
    mult_adds: int


@dataclass(frozen=True)
class ModelCosts:
    """Per-layer costs of one model and their totals under both conventions."""

    name: str
    layers: tuple[LayerCost, ...]
    mult_adds: int
    params: int
    """Paper convention."""
    keras_params: int
    """``model.count_params()``."""

    def by_type(self) -> dict[str, tuple[int, int]]:
        """Layer type → (mult-adds, paper params), Table 2 types first and always present."""
        totals: dict[str, tuple[int, int]] = {kind: (0, 0) for kind in TABLE2_TYPES}
        for layer in self.layers:
            if layer.params or layer.mult_adds:
                mult_adds, params = totals.get(layer.type, (0, 0))
                totals[layer.type] = (mult_adds + layer.mult_adds, params + layer.params)
        return totals

    def shares(self) -> dict[str, tuple[float, float]]:
        """Layer type → (percent of mult-adds, percent of paper params): the paper's Table 2."""
        return {
            kind: (100.0 * mult_adds / self.mult_adds, 100.0 * params / self.params)
            for kind, (mult_adds, params) in self.by_type().items()
        }


def count_costs(model: keras.Model) -> ModelCosts:
    """Count a built functional model layer by layer.

    Raises ValueError for a layer that holds weights but is not one this counter knows
    (Conv2D, DepthwiseConv2D, Dense, BatchNormalization), rather than silently undercount.
    """
    rows = tuple(_layer_cost(layer) for layer in model.layers)
    return ModelCosts(
        name=model.name,
        layers=rows,
        mult_adds=sum(row.mult_adds for row in rows),
        params=sum(row.params for row in rows),
        keras_params=int(model.count_params()),
    )


@functools.lru_cache(maxsize=64)
def costs_for(
    alpha: float, resolution: int, num_classes: int = 1000, variant: str = "separable"
) -> ModelCosts:
    """Build MobileNetV1 at these coordinates and count it (cached: building takes ~0.2 s).

    Bad arguments raise the builder's ValueError.
    """
    model = build_mobilenet_v1(alpha, resolution, num_classes, variant=variant)
    return count_costs(model)


def single_layer_costs(channels: int, size: int, separable: bool) -> ModelCosts:
    """One ``size×size×channels → size×size×channels`` 3×3 layer, as in the paper's Table 3.

    ``separable=False`` is a full 3×3 convolution; ``True`` is a 3×3 depthwise convolution
    followed by a 1×1 pointwise one. Only the convolutions are built (no BatchNorm, no bias),
    as the table counts them.
    """
    inputs = keras.Input(shape=(size, size, channels), name="feature_map")
    if separable:
        x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="dw")(inputs)
        x = layers.Conv2D(channels, 1, use_bias=False, name="pw")(x)
    else:
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False, name="conv")(inputs)
    kind = "separable" if separable else "conv"
    return count_costs(keras.Model(inputs, x, name=f"{kind}_{size}x{size}x{channels}"))


# The paper's Table 3: a 14×14×512 layer (D_K=3, M=N=512, D_F=14) modified cumulatively:
# (label as printed, channels, feature-map size, separable). ρ = 0.714 takes D_F from 14 to
# round(14 × 0.714) = 10 (the paper's 160/224).
TABLE3_LAYERS: tuple[tuple[str, int, int, bool], ...] = (
    ("Convolution", 512, 14, False),
    ("Depthwise Separable Conv", 512, 14, True),
    ("α = 0.75", int(512 * 0.75), 14, True),
    ("ρ = 0.714", int(512 * 0.75), round(14 * 0.714), True),
)


@functools.lru_cache(maxsize=1)
def table3_costs() -> tuple[tuple[str, ModelCosts], ...]:
    """The four rows of the paper's Table 3, each counted from the layer built for it."""
    return tuple(
        (label, single_layer_costs(channels, size, separable))
        for label, channels, size, separable in TABLE3_LAYERS
    )


def _layer_cost(layer: keras.layers.Layer) -> LayerCost:
    output_shape = _shape(layer.output)
    # An InputLayer has no input tensor (``[]``): its input is what it outputs.
    input_shape = _shape(layer.input) if not isinstance(layer, layers.InputLayer) else output_shape
    keras_params = int(layer.count_params())
    kind = type(layer).__name__
    params = 0
    mult_adds = 0
    # DepthwiseConv2D is not a Conv2D subclass in Keras 3, but test it first in case it becomes one.
    if isinstance(layer, layers.DepthwiseConv2D):
        kind = _conv_type(layer.kernel_size, depthwise=True)
        params = _size(layer.kernel.shape)
        mult_adds = params * _positions(output_shape)
    elif isinstance(layer, layers.Conv2D):
        kind = _conv_type(layer.kernel_size, depthwise=False)
        # The kernel is (k, k, C_in / groups, C_out), so grouped convolutions count right too.
        params = _size(layer.kernel.shape)
        mult_adds = params * _positions(output_shape)
    elif isinstance(layer, layers.Dense):
        kind = FULLY_CONNECTED
        params = _size(layer.kernel.shape)
        # A Dense layer applies its kernel once per position of the leading (non-feature) axes.
        mult_adds = params * _positions(output_shape)
    elif keras_params and not isinstance(layer, layers.BatchNormalization):
        raise ValueError(
            f"cannot count layer {layer.name!r} of type {kind}: it holds {keras_params} "
            "weights but only Conv2D, DepthwiseConv2D, Dense and BatchNormalization are known"
        )
    return LayerCost(
        name=layer.name,
        type=kind,
        input_shape=input_shape,
        output_shape=output_shape,
        params=params,
        keras_params=keras_params,
        mult_adds=mult_adds,
    )


def _conv_type(kernel_size: Sequence[int], depthwise: bool) -> str:
    size = "x".join(str(k) for k in kernel_size)
    return f"Conv DW {size}" if depthwise else f"Conv {size}"


def _shape(tensor: Any) -> Shape:
    # A layer with several inputs is not in MobileNet, so the first one stands for all (the
    # counts never read input shapes).
    if isinstance(tensor, list | tuple):
        tensor = tensor[0]
    return tuple(tensor.shape[1:])


def _size(shape: Sequence[int]) -> int:
    return math.prod(int(d) for d in shape)


def _positions(output_shape: Shape) -> int:
    """How many times a kernel is applied: the product of all output axes but channels."""
    spatial = output_shape[:-1]
    if any(d is None for d in spatial):
        raise ValueError(
            f"cannot count mult-adds for output shape {output_shape}: build the model with a "
            "fixed input size"
        )
    return math.prod(int(d) for d in spatial if d is not None)
