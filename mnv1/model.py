"""MobileNetV1 (Howard et al. 2017, arXiv:1704.04861) as one table of blocks and one builder.

Pure Keras 3: no ``tf.`` call, so the same builder runs on the TensorFlow, JAX and PyTorch
backends (``mnv1.bench.gpu`` times it on a GPU host that has JAX or PyTorch but no TensorFlow).

Where this departs from the paper's text, it follows the reference implementations (TF-slim
``mobilenet_v1.py`` and ``keras.applications.MobileNet``), each noted where it happens:

* Table 1 prints the second-to-last depthwise conv as stride 2; it is stride 1 (the table's own
  input-size column stays 7×7, and both reference implementations use 1; tensorflow/models#1997).
* The paper says ReLU after every BatchNorm; the references use ReLU6. ``activation`` picks.
* The classifier is ``GlobalAveragePooling → Dropout → Dense → softmax``: dropout comes before the
  classifier (a widely copied Keras listing puts it after, where it only perturbs the output).

Width rule: every layer gets ``int(channels × α)`` channels, as in Keras (TF-slim adds a floor of
8 channels, ``min_depth``). On the paper's grid every product is an integer, so the rule only
matters off the grid: α=0.6 gives ``int(19.2) = 19`` channels in the first conv and 614 in the
last; α=1.25 gives 40 … 1280. An α so small that some layer would get no channel (α < 1/32) is
rejected.

Padding is SAME everywhere, so each stride-2 layer gives ``ceil(size / 2)``: 224 → 7, 192 → 6,
160 → 5, 128 → 4 at the last feature map, and any other size ≥ 32 works (100 → 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
from keras import layers

from mnv1.config import ConfigError, Rule, Variant, rule
from mnv1.config import run_name as model_name

# The paper's Table 1, one row per block: (kind, stride, output channels at α = 1).
# "conv" is a full 3×3 convolution; "separable" is a 3×3 depthwise conv followed by a 1×1
# pointwise conv. Row numbers are the block ids used in layer names (block1 … block13).
BLOCKS: tuple[tuple[str, int, int], ...] = (
    ("conv", 2, 32),  # conv0: 224×224×3 → 112×112×32
    ("separable", 1, 64),  # block1
    ("separable", 2, 128),  # block2
    ("separable", 1, 128),  # block3
    ("separable", 2, 256),  # block4
    ("separable", 1, 256),  # block5
    ("separable", 2, 512),  # block6
    ("separable", 1, 512),  # block7  ┐
    ("separable", 1, 512),  # block8  │ the "5×" 14×14×512 blocks,
    ("separable", 1, 512),  # block9  │ removed by variant="shallow"
    ("separable", 1, 512),  # block10 │ (the paper's Table 5)
    ("separable", 1, 512),  # block11 ┘
    ("separable", 2, 1024),  # block12
    ("separable", 1, 1024),  # block13: printed "s2" in the paper, an erratum
)

SHALLOW_REMOVED: frozenset[int] = frozenset({7, 8, 9, 10, 11})
# Not a configuration key (the dataset decides it), so its rule lives here; a softmax over one
# class learns nothing.
NUM_CLASSES_RULE = Rule("num_classes", "int", low=2)


def width(channels: int, alpha: float) -> int:
    """Channels of a layer at width multiplier α: ``int(channels × α)``, as Keras and TF-slim."""
    return int(channels * alpha)


def build_mobilenet_v1(
    alpha: float = 1.0,
    resolution: int = 224,
    num_classes: int = 1000,
    variant: Variant | str = "separable",
    dropout: float = 1e-3,
    activation: str = "relu6",
    bn_momentum: float = 0.99,
    bn_epsilon: float = 1e-3,
    sync_bn: bool = False,
    name: str | None = None,
) -> keras.Model:
    """Build MobileNetV1 for ``resolution × resolution × 3`` inputs.

    Args:
        alpha: width multiplier α > 0 (the paper's grid: 1, 0.75, 0.5, 0.25).
        resolution: input height and width in pixels (the paper's ρ·224), an integer ≥ 32.
        num_classes: size of the softmax classifier, ≥ 2.
        variant: ``separable`` (the paper's MobileNet), ``full_conv`` (every separable block a
            full 3×3 convolution, Table 4) or ``shallow`` (the five 14×14×512 blocks removed,
            Table 5).
        dropout: dropout rate before the classifier, in [0, 1).
        activation: ``relu6`` (the reference implementations) or ``relu`` (the paper's text).
        bn_momentum, bn_epsilon: BatchNorm moving-average momentum and epsilon.
        sync_bn: synchronise BatchNorm batch statistics across replicas.
        name: model name; defaults to ``model_name(alpha, resolution, variant)``.
    """
    _check_arguments(
        alpha=alpha,
        resolution=resolution,
        variant=variant,
        dropout=dropout,
        activation=activation,
        sync_bn=sync_bn,
        bn_momentum=bn_momentum,
    )
    problem = NUM_CLASSES_RULE.check(num_classes)
    if problem is not None:
        raise ConfigError([problem])
    # NumPy scalars (np.int64 from a grid, np.float32 from a tuner) pass the checks; plain Python
    # values keep the model name and the layer configs clean.
    alpha, resolution, num_classes = float(alpha), int(resolution), int(num_classes)

    blocks = _Blocks(activation, bn_momentum, bn_epsilon, sync_bn)
    inputs = keras.Input(shape=(resolution, resolution, 3), name="image")
    x = blocks.body(inputs, alpha, variant)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(num_classes, name="fc")(x)
    # float32 softmax keeps the probabilities exact under mixed precision.
    outputs = layers.Activation("softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name or model_name(alpha, resolution, variant))


@dataclass(frozen=True)
class _Blocks:
    """The layers of the convolutional body, under the names the layer tables and costs pin:
    ``conv0``, ``block<i>_dw``, ``block<i>_pw``, ``block<i>_conv``, each with ``_bn``, ``_relu``."""

    activation: str
    bn_momentum: float
    bn_epsilon: float
    sync_bn: bool

    def body(self, x: keras.KerasTensor, alpha: float, variant: Variant | str) -> keras.KerasTensor:
        """The 14 blocks of Table 1 (the variant's version of each) on ``x``."""
        for block_id, (kind, stride, channels) in enumerate(BLOCKS):
            filters = width(channels, alpha)
            if kind == "conv":
                x = self.conv(x, filters, 3, stride, f"conv{block_id}")
            elif variant == "shallow" and block_id in SHALLOW_REMOVED:
                continue
            elif variant == "full_conv":
                x = self.conv(x, filters, 3, stride, f"block{block_id}_conv")
            else:
                x = self.separable(x, filters, stride, f"block{block_id}")
        return x

    def norm_act(self, x: keras.KerasTensor, prefix: str) -> keras.KerasTensor:
        x = layers.BatchNormalization(
            momentum=self.bn_momentum,
            epsilon=self.bn_epsilon,
            synchronized=self.sync_bn,
            name=f"{prefix}_bn",
        )(x)
        if self.activation == "relu6":
            return layers.ReLU(max_value=6.0, name=f"{prefix}_relu")(x)
        return layers.ReLU(name=f"{prefix}_relu")(x)

    def conv(
        self, x: keras.KerasTensor, filters: int, kernel: int, stride: int, prefix: str
    ) -> keras.KerasTensor:
        # No bias: the BatchNorm that follows has its own shift (β).
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding="same", use_bias=False, name=prefix
        )(x)
        return self.norm_act(x, prefix)

    def separable(
        self, x: keras.KerasTensor, filters: int, stride: int, prefix: str
    ) -> keras.KerasTensor:
        x = layers.DepthwiseConv2D(
            3, strides=stride, padding="same", use_bias=False, name=f"{prefix}_dw"
        )(x)
        x = self.norm_act(x, f"{prefix}_dw")
        return self.conv(x, filters, 1, 1, f"{prefix}_pw")


def _check_arguments(**model_arguments: Any) -> None:
    """Reject bad arguments before any layer is built, by the rules of the ``model.*`` keys
    (``mnv1.config.RULES``): ConfigError, a ValueError, naming each key, value and what is
    allowed."""
    found = [rule(f"model.{name}").check(value) for name, value in model_arguments.items()]
    problems = [p for p in found if p is not None]
    if problems:
        raise ConfigError(problems)
