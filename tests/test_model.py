"""The builder: Table 1's shapes at any resolution, the variants, names, and argument checks."""

from __future__ import annotations

import math
import re

import keras
import numpy as np
import pytest

from mnv1.model import build_mobilenet_v1, width

# The paper's Table 1, written out independently of mnv1.model.BLOCKS: (stride, output channels at
# α = 1) of conv0 and the 13 separable blocks, block 13 at stride 1 (the paper prints s2: an
# erratum). The widely copied Keras listing had 256 at block 6 and 512 at block 12.
TABLE1 = [
    (2, 32),
    (1, 64),
    (2, 128),
    (1, 128),
    (2, 256),
    (1, 256),
    (2, 512),
    *[(1, 512)] * 5,
    (2, 1024),
    (1, 1024),
]


def _spatial(model: keras.Model, layer: str) -> int:
    shape = model.get_layer(layer).output.shape
    assert shape[1] == shape[2], shape
    return int(shape[1])


@pytest.fixture(scope="module")
def small_models() -> dict[int, keras.Model]:
    """α = 0.25 at every grid resolution and one off-grid size; shapes do not depend on α."""
    return {r: build_mobilenet_v1(0.25, r, num_classes=10) for r in (224, 192, 160, 128, 100)}


@pytest.mark.parametrize(
    ("resolution", "final"), [(224, 7), (192, 6), (160, 5), (128, 4), (100, 4)]
)
def test_feature_map_sizes_at_every_resolution(
    resolution: int, final: int, small_models: dict[int, keras.Model]
) -> None:
    model = small_models[resolution]
    assert model.input_shape == (None, resolution, resolution, 3)
    assert model.output_shape == (None, 10)
    # SAME padding: each stride-2 layer maps size to ceil(size / 2), block by block (Table 1
    # with block 13 at stride 1).
    size = math.ceil(resolution / 2)
    assert _spatial(model, "conv0_relu") == size
    assert model.get_layer("conv0").output.shape[-1] == width(32, 0.25)
    for block_id, (stride, channels) in enumerate(TABLE1[1:], start=1):
        size = math.ceil(size / stride)
        assert _spatial(model, f"block{block_id}_dw_relu") == size
        assert model.get_layer(f"block{block_id}_pw").output.shape[-1] == width(channels, 0.25)
    assert _spatial(model, "block13_pw_relu") == final
    assert model.get_layer("pool").output.shape == (None, 256)


def test_forward_pass_gives_probabilities() -> None:
    model = build_mobilenet_v1(0.25, 32, num_classes=3)
    images = np.random.default_rng(0).uniform(-1, 1, size=(2, 32, 32, 3)).astype("float32")
    probs = np.asarray(model(images, training=False))
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_layer_names_model_name_and_head_order() -> None:
    model = build_mobilenet_v1(0.75, 160, num_classes=5)
    assert model.name == "mnv1_a0.75_r160"
    names = [layer.name for layer in model.layers]
    assert names[:4] == ["image", "conv0", "conv0_bn", "conv0_relu"]
    assert names[4:10] == [
        "block1_dw",
        "block1_dw_bn",
        "block1_dw_relu",
        "block1_pw",
        "block1_pw_bn",
        "block1_pw_relu",
    ]
    # Dropout comes before the classifier, softmax last.
    assert names[-4:] == ["pool", "dropout", "fc", "predictions"]
    assert model.get_layer("dropout").rate == pytest.approx(1e-3)
    assert model.get_layer("predictions").dtype_policy.compute_dtype == "float32"
    assert len(names) == 1 + 3 + 13 * 6 + 4


def test_batchnorm_and_relu6_after_every_convolution() -> None:
    model = build_mobilenet_v1(0.25, 32, num_classes=2)
    convs = [
        layer
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv2D | keras.layers.DepthwiseConv2D)
    ]
    assert len(convs) == 27  # the paper's 28 layers less the FC
    for conv in convs:
        assert conv.use_bias is False
        bn = model.get_layer(f"{conv.name}_bn")
        assert isinstance(bn, keras.layers.BatchNormalization)
        assert model.get_layer(f"{conv.name}_relu").max_value == 6.0
    relu = build_mobilenet_v1(0.25, 32, num_classes=2, activation="relu")
    assert relu.get_layer("block5_pw_relu").max_value is None


def test_variants() -> None:
    full = build_mobilenet_v1(0.25, 64, num_classes=2, variant="full_conv")
    assert full.name == "mnv1_a0.25_r64_full_conv"
    assert not any(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in full.layers)
    assert full.get_layer("block12_conv").kernel.shape == (3, 3, 128, 256)
    assert full.get_layer("block12_conv").strides == (2, 2)
    assert _spatial(full, "block13_conv_relu") == 2

    shallow = build_mobilenet_v1(0.25, 64, num_classes=2, variant="shallow")
    assert shallow.name == "mnv1_a0.25_r64_shallow"
    names = {layer.name for layer in shallow.layers}
    assert "block6_pw" in names and "block12_dw" in names
    assert not any(f"block{b}_dw" in names for b in range(7, 12))
    assert shallow.get_layer("block12_dw").input.shape[1:] == (4, 4, 128)


@pytest.mark.parametrize(
    ("alpha", "first", "last"), [(0.6, 19, 614), (1.25, 40, 1280), (1 / 32, 1, 32)]
)
def test_width_rule_off_the_grid(alpha: float, first: int, last: int) -> None:
    model = build_mobilenet_v1(alpha, 32, num_classes=2)
    assert model.get_layer("conv0").filters == first
    assert model.get_layer("block13_pw").filters == last


def test_numpy_scalars_are_accepted() -> None:
    model = build_mobilenet_v1(np.float32(0.25), np.int64(32), num_classes=np.int32(4))
    assert model.name == "mnv1_a0.25_r32"
    assert model.output_shape == (None, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"alpha": 0.0}, "model.alpha=0.0: must be a number >= 0.03125 (1/32: the first layer"),
        ({"alpha": -0.5}, "model.alpha=-0.5: must be a number >= 0.03125"),
        ({"alpha": 0.01}, "model.alpha=0.01: must be a number >= 0.03125"),
        ({"alpha": float("nan")}, "model.alpha=nan: must be a number >= 0.03125"),
        ({"alpha": "1.0"}, "model.alpha='1.0': must be a number >= 0.03125"),
        ({"alpha": True}, "model.alpha=True: must be a number >= 0.03125"),
        ({"resolution": 31}, "model.resolution=31: must be an integer >= 32 (pixels"),
        ({"resolution": 0}, "model.resolution=0: must be an integer >= 32"),
        ({"resolution": 224.0}, "model.resolution=224.0: must be an integer >= 32"),
        ({"resolution": "224"}, "model.resolution='224': must be an integer >= 32"),
        ({"num_classes": 1}, "num_classes=1: must be an integer >= 2"),
        ({"num_classes": 10.0}, "num_classes=10.0: must be an integer >= 2"),
        (
            {"variant": "mixed"},
            "model.variant='mixed': must be one of separable, full_conv, shallow",
        ),
        ({"dropout": 1.0}, "model.dropout=1.0: must be a number in [0, 1)"),
        ({"activation": "gelu"}, "model.activation='gelu': must be one of relu6, relu"),
        ({"bn_momentum": 1.0}, "model.bn_momentum=1.0: must be a number in (0, 1)"),
        ({"sync_bn": "yes"}, "model.sync_bn='yes': must be true or false"),
    ],
)
def test_bad_arguments_name_the_argument_and_value(kwargs: dict, message: str) -> None:
    arguments = {"alpha": 0.25, "resolution": 32, "num_classes": 2, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        build_mobilenet_v1(**arguments)
