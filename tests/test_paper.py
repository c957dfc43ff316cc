"""The paper's printed numbers: complete, internally consistent, and findable by coordinates."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mnv1 import paper


def test_importing_paper_does_not_import_tensorflow() -> None:
    # The report and the config validator read paper numbers before any device is configured.
    code = "import mnv1.paper, sys; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_table2_keys_and_printed_values() -> None:
    assert list(paper.TABLE2) == ["Conv 1x1", "Conv DW 3x3", "Conv 3x3", "Fully Connected"]
    assert paper.TABLE2["Conv 3x3"] == (1.19, 0.02)  # as printed: the erratum stays visible
    # Printed parameter shares sum to 100%; printed mult-adds only do with the 1.91% fix.
    assert sum(p for _, p in paper.TABLE2.values()) == pytest.approx(100.0)
    assert sum(m for m, _ in paper.TABLE2.values()) == pytest.approx(99.29)
    fixed = paper.erratum_for("Table 2", "Conv 3x3 mult-adds")
    assert fixed is not None and fixed.printed == "1.19%" and fixed.correct == "1.91%"


def test_table3_rows() -> None:
    assert paper.TABLE3 == (
        ("Convolution", 462.0, 2.36),
        ("Depthwise Separable Conv", 52.3, 0.27),
        ("α = 0.75", 29.6, 0.15),
        ("ρ = 0.714", 15.1, 0.15),
    )


@pytest.mark.parametrize(
    ("table", "alpha", "resolution", "variant", "top1", "mult_adds", "params"),
    [
        (4, 1.0, 224, "full_conv", 71.7, 4866.0, 29.3),
        (4, 1.0, 224, "separable", 70.6, 569.0, 4.2),
        (5, 0.75, 224, "separable", 68.4, 325.0, 2.6),
        (5, 1.0, 224, "shallow", 65.3, 307.0, 2.9),
        (6, 0.5, 224, "separable", 63.7, 149.0, 1.3),
        (6, 0.25, 224, "separable", 50.6, 41.0, 0.5),
        (7, 1.0, 160, "separable", 67.2, 290.0, 4.2),
        (7, 1.0, 128, "separable", 64.4, 186.0, 4.2),
        (8, 1.0, 224, "separable", 70.6, 569.0, 4.2),
        (9, 0.5, 160, "separable", 60.2, 76.0, 1.32),
    ],
)
def test_paper_row_lookup(
    table: int,
    alpha: float,
    resolution: int,
    variant: str,
    top1: float,
    mult_adds: float,
    params: float,
) -> None:
    row = paper.paper_row(table, alpha, resolution, variant)
    assert row is not None
    assert (row.top1, row.mult_adds_m, row.params_m) == (top1, mult_adds, params)
    assert row.source == f"[P] Table {table}"
    assert paper.paper_row(f"Table {table}", alpha, resolution, variant) == row


def test_paper_row_absent_and_bad_table() -> None:
    assert paper.paper_row(6, 1.0, 160) is None
    with pytest.raises(ValueError, match=r"table must be one of Table 4, .*got 'Table 11'"):
        paper.paper_row("Table 11", 1.0, 224)


def test_tables_hold_printed_row_order_and_other_models() -> None:
    assert [r.model for r in paper.TABLE6] == [
        "1.0 MobileNet-224",
        "0.75 MobileNet-224",
        "0.5 MobileNet-224",
        "0.25 MobileNet-224",
    ]
    assert [r.resolution for r in paper.TABLE7] == [224, 192, 160, 128]
    assert [(r.model, r.variant) for r in paper.TABLE8[1:]] == [
        ("GoogleNet", "other"),
        ("VGG 16", "other"),
    ]
    assert [(r.model, r.mult_adds_m, r.params_m) for r in paper.TABLE9[1:]] == [
        ("Squeezenet", 1700.0, 1.25),
        ("AlexNet", 720.0, 60.0),
    ]
    for rows in paper.TABLES.values():
        for row in rows:
            assert row.variant in paper.VARIANT_KINDS
            assert row.num_classes == 1000


def test_slim_table_is_the_full_grid() -> None:
    cells = {(r.alpha, r.resolution) for r in paper.SLIM_CHECKPOINTS}
    assert cells == {(a, r) for a in (1.0, 0.75, 0.5, 0.25) for r in (224, 192, 160, 128)}
    assert len(paper.SLIM_CHECKPOINTS) == 16
    row = paper.slim_row(0.75, 224)
    assert (row.macs_m, row.params_m, row.top1_2017, row.top5_2017) == (317.0, 2.59, 68.4, 88.2)
    assert (row.top1_2018, row.top5_2018) == (68.4, 88.2)
    assert paper.slim_row(1.0, 224).top1_2018 == 70.9
    assert paper.slim_row(0.25, 128).top5_2018 == 66.3
    assert row.name == "MobileNet_v1_0.75_224"
    assert paper.slim_row(1.0, 160).name == "MobileNet_v1_1.0_160"
    with pytest.raises(ValueError, match=r"got alpha=0.6, resolution=224"):
        paper.slim_row(0.6, 224)


def test_every_slim_mac_erratum_names_an_existing_row() -> None:
    names = {r.name for r in paper.SLIM_CHECKPOINTS}
    # Four are derived (slim left out the first conv); two nobody can derive are not errata.
    mac_errata = [e for e in paper.ERRATA if e.table == "TF-slim" and e.item.endswith("mult-adds")]
    assert len(mac_errata) == 4
    underived = [
        d for d in paper.UNEXPLAINED if d.table == "TF-slim" and d.item.endswith("mult-adds")
    ]
    assert len(underived) == 2
    for erratum in [*mac_errata, *underived]:
        name = erratum.item.removesuffix(" mult-adds")
        assert name in names
        printed = next(r for r in paper.SLIM_CHECKPOINTS if r.name == name).macs_m
        assert erratum.printed == f"{printed:g}"


def test_erratum_lookup() -> None:
    assert paper.erratum_for("Table 7", "1.0 MobileNet-160 MULT-ADDS") is not None
    assert paper.erratum_for("Table 7", "1.0 MobileNet-192 mult-adds") is None
    stride = paper.erratum_for("Table 1", "Conv dw 3x3x1024 stride")
    assert stride is not None and (stride.printed, stride.correct) == ("s2", "s1")
    tables = {e.table for e in paper.ERRATA}
    assert {"Table 1", "Table 2", "Table 4", "Table 7", "Table 9", "TF-slim"} <= tables


@pytest.mark.parametrize(
    ("value", "decimals"), [(569.0, 0), (4.2, 1), (1.32, 2), (0.02, 2), (60.0, 0), (52.3, 1)]
)
def test_printed_decimals(value: float, decimals: int) -> None:
    assert paper.printed_decimals(value) == decimals
