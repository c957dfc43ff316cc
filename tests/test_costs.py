"""Exact counts of the built model against arithmetic done independently of it.

The integers were worked out from the layer shapes of the paper's Table 1 at α and ρ,
independently of ``mnv1.costs``, in the paper's parameter convention (weights of convolutions
and the classifier; no biases, no BatchNorm) and in Keras's (``model.count_params()``, as
``keras.applications.MobileNet``). The paper's printed figures, and the errata where they
differ, live in ``mnv1.paper``.
"""

from __future__ import annotations

import keras
import pytest

from mnv1 import paper
from mnv1.costs import (
    TABLE2_TYPES,
    costs_for,
    count_costs,
    single_layer_costs,
    table3_costs,
)

# (alpha, resolution) -> (mult-adds, paper params, keras params).
GRID: dict[tuple[float, int], tuple[int, int, int]] = {
    (1.0, 224): (568_740_352, 4_209_088, 4_253_864),
    (1.0, 192): (418_121_728, 4_209_088, 4_253_864),
    (1.0, 160): (290_675_200, 4_209_088, 4_253_864),
    (1.0, 128): (186_400_768, 4_209_088, 4_253_864),
    (0.75, 224): (325_400_448, 2_568_144, 2_601_976),
    (0.75, 192): (239_273_472, 2_568_144, 2_601_976),
    (0.75, 160): (166_396_800, 2_568_144, 2_601_976),
    (0.75, 128): (106_770_432, 2_568_144, 2_601_976),
    (0.5, 224): (149_497_088, 1_319_648, 1_342_536),
    (0.5, 192): (109_970_432, 1_319_648, 1_342_536),
    (0.5, 160): (76_524_800, 1_319_648, 1_342_536),
    (0.5, 128): (49_160_192, 1_319_648, 1_342_536),
    (0.25, 224): (41_030_272, 463_600, 475_544),
    (0.25, 192): (30_212_608, 463_600, 475_544),
    (0.25, 160): (21_059_200, 463_600, 475_544),
    (0.25, 128): (13_570_048, 463_600, 475_544),
}


@pytest.mark.parametrize(("alpha", "resolution"), list(GRID))
def test_grid_cell_exact_counts(alpha: float, resolution: int) -> None:
    costs = costs_for(alpha, resolution)
    assert (costs.mult_adds, costs.params, costs.keras_params) == GRID[alpha, resolution]
    # Body-only mult-adds (convention A) are the total less the 1024α × 1000 classifier.
    fc = costs.by_type()["Fully Connected"]
    assert fc == (int(1024 * alpha) * 1000, int(1024 * alpha) * 1000)


@pytest.fixture(scope="module")
def keras_reference_counts() -> dict[float, int]:
    """keras.applications.MobileNet's own count at each α, built here (no weights download)."""
    counts = {}
    for alpha in (1.0, 0.75, 0.5, 0.25):
        reference = keras.applications.MobileNet(alpha=alpha, weights=None, classes=1000)
        counts[alpha] = reference.count_params()
        del reference
    keras.backend.clear_session()
    return counts


@pytest.mark.parametrize("alpha", [1.0, 0.75, 0.5, 0.25])
def test_keras_convention_equals_keras_applications(
    alpha: float, keras_reference_counts: dict[float, int]
) -> None:
    assert costs_for(alpha, 224).keras_params == keras_reference_counts[alpha]
    # Section 4's published counts, so the check also fails if Keras itself changed.
    assert keras_reference_counts[alpha] == GRID[alpha, 224][2]


def test_full_conv_totals_table4() -> None:
    costs = costs_for(1.0, 224, variant="full_conv")
    assert (costs.mult_adds, costs.params) == (4_867_293_184, 29_281_120)
    # The paper's 4866 is the count without the FC layer.
    assert costs.mult_adds - 1_024_000 == 4_866_269_184
    assert set(costs.by_type()) == set(TABLE2_TYPES)
    assert costs.by_type()["Conv DW 3x3"] == (0, 0)


def test_shallow_totals_table5() -> None:
    costs = costs_for(1.0, 224, variant="shallow")
    assert (costs.mult_adds, costs.params) == (307_323_392, 2_875_328)
    names = {layer.name for layer in costs.layers}
    assert "block6_pw" in names and "block12_dw" in names
    assert not any(name.startswith(f"block{b}_") for b in range(7, 12) for name in names)


def test_table2_exact_sums_and_shares() -> None:
    costs = costs_for(1.0, 224)
    assert costs.by_type() == {
        "Conv 1x1": (539_492_352, 3_139_584),
        "Conv DW 3x3": (17_385_984, 44_640),
        "Conv 3x3": (10_838_016, 864),
        "Fully Connected": (1_024_000, 1_024_000),
    }
    shares = costs.shares()
    assert list(shares) == list(paper.TABLE2)
    rounded = {kind: (round(m, 2), round(p, 2)) for kind, (m, p) in shares.items()}
    # Seven of the eight printed cells; the eighth is the paper's 1.19% transposition of 1.91%.
    expected = dict(paper.TABLE2)
    expected["Conv 3x3"] = (1.91, 0.02)
    assert rounded == expected
    erratum = paper.erratum_for("Table 2", "Conv 3x3 mult-adds")
    assert erratum is not None and f"{rounded['Conv 3x3'][0]:.2f}%" == erratum.correct
    assert sum(m for m, _ in shares.values()) == pytest.approx(100.0)
    assert sum(p for _, p in shares.values()) == pytest.approx(100.0)


def test_table3_four_rows() -> None:
    rows = [(label, c.mult_adds, c.params) for label, c in table3_costs()]
    assert rows == [
        ("Convolution", 462_422_016, 2_359_296),
        ("Depthwise Separable Conv", 52_283_392, 266_752),
        ("α = 0.75", 29_578_752, 150_912),
        ("ρ = 0.714", 15_091_200, 150_912),
    ]
    # And as printed: mult-adds to the printed decimals, params to the printed decimals.
    for (label, mult_adds, params), printed in zip(rows, paper.TABLE3, strict=True):
        assert label == printed[0]
        assert round(mult_adds / 1e6, paper.printed_decimals(printed[1])) == printed[1]
        assert round(params / 1e6, paper.printed_decimals(printed[2])) == printed[2]


def test_per_layer_rows_at_1_0_224() -> None:
    """Section 3.6's per-layer lines, which equal TF-slim's per-layer docstring."""
    layers = {layer.name: layer for layer in costs_for(1.0, 224).layers}
    expected = {
        "conv0": ("Conv 3x3", (224, 224, 3), (112, 112, 32), 864, 10_838_016),
        "block1_dw": ("Conv DW 3x3", (112, 112, 32), (112, 112, 32), 288, 3_612_672),
        "block1_pw": ("Conv 1x1", (112, 112, 32), (112, 112, 64), 2_048, 25_690_112),
        "block2_dw": ("Conv DW 3x3", (112, 112, 64), (56, 56, 64), 576, 1_806_336),
        "block6_pw": ("Conv 1x1", (14, 14, 256), (14, 14, 512), 131_072, 25_690_112),
        "block9_pw": ("Conv 1x1", (14, 14, 512), (14, 14, 512), 262_144, 51_380_224),
        "block12_dw": ("Conv DW 3x3", (14, 14, 512), (7, 7, 512), 4_608, 225_792),
        "block13_dw": ("Conv DW 3x3", (7, 7, 1024), (7, 7, 1024), 9_216, 451_584),
        "block13_pw": ("Conv 1x1", (7, 7, 1024), (7, 7, 1024), 1_048_576, 51_380_224),
        "fc": ("Fully Connected", (1024,), (1000,), 1_024_000, 1_024_000),
    }
    for name, (kind, shape_in, shape_out, params, mult_adds) in expected.items():
        row = layers[name]
        assert (row.type, row.input_shape, row.output_shape) == (kind, shape_in, shape_out)
        assert (row.params, row.mult_adds) == (params, mult_adds), name
    # Keras counts the classifier bias and 4 BatchNorm values per channel; the paper neither.
    assert layers["fc"].keras_params == 1_025_000
    assert (layers["conv0_bn"].params, layers["conv0_bn"].keras_params) == (0, 4 * 32)
    assert layers["pool"].output_shape == (1024,)


def test_num_classes_changes_only_the_classifier() -> None:
    # Table 10 (Stanford Dogs, 120 classes): 3.308M params, 567.84M mult-adds at 1.0-224.
    dogs = costs_for(1.0, 224, num_classes=120)
    assert (dogs.mult_adds, dogs.params) == (567_716_352 + 1024 * 120, 3_185_088 + 1024 * 120)
    assert round(dogs.params / 1e6, 1) == 3.3


def test_costs_for_is_cached_and_validates() -> None:
    assert costs_for(0.25, 128) is costs_for(0.25, 128)
    with pytest.raises(ValueError, match=r"model.variant='mixed': must be one of separable"):
        costs_for(0.25, 128, variant="mixed")


def test_single_layer_builds_only_the_convolutions() -> None:
    costs = single_layer_costs(8, 5, separable=True)
    assert [layer.type for layer in costs.layers] == ["InputLayer", "Conv DW 3x3", "Conv 1x1"]
    assert (costs.mult_adds, costs.params) == ((9 * 8 + 8 * 8) * 25, 9 * 8 + 8 * 8)
    assert costs.keras_params == costs.params


def test_counts_grouped_and_non_square_convolutions() -> None:
    inputs = keras.Input(shape=(10, 8, 4))
    x = keras.layers.Conv2D(6, (1, 3), strides=(1, 2), padding="same", groups=2, use_bias=False)(
        inputs
    )
    costs = count_costs(keras.Model(inputs, x))
    conv = costs.layers[1]
    assert conv.type == "Conv 1x3"
    assert conv.output_shape == (10, 4, 6)
    assert (conv.params, conv.mult_adds) == (1 * 3 * 2 * 6, 1 * 3 * 2 * 6 * 10 * 4)
    assert "Conv 1x3" in costs.by_type()


def test_unknown_weighted_layer_is_refused() -> None:
    inputs = keras.Input(shape=(4,))
    x = keras.layers.Embedding(10, 3, name="lookup")(inputs)
    with pytest.raises(ValueError, match=r"cannot count layer .lookup. of type Embedding"):
        count_costs(keras.Model(inputs, x))
