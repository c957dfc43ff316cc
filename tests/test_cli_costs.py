"""``mnv1-costs``: the paper comparison and the per-layer table, in all three formats."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mnv1.cli.costs import main

# Every analytic cell that differs from the paper's print, and why (see mnv1.paper.ERRATA).
ERRATA_ROWS = {
    ("Table 2", "Conv 3x3"),
    ("Table 4", "Conv MobileNet"),
    ("Table 7", "1.0 MobileNet-160"),
    ("Table 9", "0.50 MobileNet-160"),
}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_default_markdown_has_every_table_and_flags_the_errata(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = _run(capsys)
    assert code == 0
    for table in range(2, 10):
        assert f"## Table {table}:" in out
    assert "| FAIL |" not in out
    lines = out.splitlines()
    conv3x3 = next(line for line in lines if line.startswith("| Conv 3x3 |"))
    assert "| 10,838,016 | 1.91 | 1.19 |" in conv3x3
    assert "erratum" in conv3x3 and "Digit transposition" in conv3x3
    r160 = next(line for line in lines if line.startswith("| 1.0 MobileNet-160 |"))
    assert "| 290,675,200 | 291 | 290 |" in r160 and "(160/224)^2" in r160
    r224 = next(line for line in lines if line.startswith("| 1.0 MobileNet-224 |"))
    assert r224.split(" | ")[1:8] == [
        "568,740,352",
        "569",
        "569",
        "4,209,088",
        "4.2",
        "4.2",
        "4,253,864",
    ]
    # GoogleNet, VGG 16, Squeezenet and AlexNet are not ours to count.
    assert "GoogleNet" not in out and "AlexNet" not in out


def test_default_csv_rows_and_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["table"] for row in rows] == (
        ["Table 2"] * 4 + ["Table 3"] * 4 + ["Table 4"] * 2 + ["Table 5"] * 2
    ) + ["Table 6"] * 4 + ["Table 7"] * 4 + ["Table 8", "Table 9"]
    errata = {(row["table"], row["row"]) for row in rows if row["status"] == "erratum"}
    assert errata == ERRATA_ROWS
    assert all(row["status"] in ("pass", "erratum") for row in rows)
    shallow = next(row for row in rows if row["row"] == "Shallow MobileNet")
    assert (shallow["mult_adds"], shallow["params"], shallow["variant"]) == (
        "307323392",
        "2875328",
        "shallow",
    )
    table3 = [(row["row"], row["mult_adds"], row["params"]) for row in rows[4:8]]
    assert table3 == [
        ("Convolution", "462422016", "2359296"),
        ("Depthwise Separable Conv", "52283392", "266752"),
        ("α = 0.75", "29578752", "150912"),
        ("ρ = 0.714", "15091200", "150912"),
    ]


def test_default_json_lists_each_model_once_with_exact_integers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out = _run(capsys, "--format", "json")
    assert code == 0
    document = json.loads(out)
    models = {(m["alpha"], m["resolution"], m["variant"]): m for m in document["models"]}
    assert len(models) == len(document["models"]) == 10
    expected = {
        (1.0, 224, "separable"): (568_740_352, 4_209_088, 4_253_864),
        (1.0, 224, "full_conv"): (4_867_293_184, 29_281_120, 29_306_056),
        (1.0, 224, "shallow"): (307_323_392, 2_875_328, 2_899_624),
        (0.75, 224, "separable"): (325_400_448, 2_568_144, 2_601_976),
        (0.5, 224, "separable"): (149_497_088, 1_319_648, 1_342_536),
        (0.25, 224, "separable"): (41_030_272, 463_600, 475_544),
        (1.0, 192, "separable"): (418_121_728, 4_209_088, 4_253_864),
        (1.0, 160, "separable"): (290_675_200, 4_209_088, 4_253_864),
        (1.0, 128, "separable"): (186_400_768, 4_209_088, 4_253_864),
        (0.5, 160, "separable"): (76_524_800, 1_319_648, 1_342_536),
    }
    for key, (mult_adds, params, keras_params) in expected.items():
        model = models[key]
        assert (model["mult_adds"], model["params"], model["keras_params"]) == (
            mult_adds,
            params,
            keras_params,
        )
        assert all(type(model[k]) is int for k in ("mult_adds", "params", "keras_params"))
        assert model["num_classes"] == 1000
    tables = {t["table"]: t for t in document["tables"]}
    assert list(tables) == [f"Table {n}" for n in range(2, 10)]
    conv3x3 = tables["Table 2"]["rows"][2]
    assert (conv3x3["row"], conv3x3["mult_adds_paper"], conv3x3["status"]) == (
        "Conv 3x3",
        1.19,
        "erratum",
    )
    assert conv3x3["mult_adds_ours"] == pytest.approx(1.9056, abs=1e-4)


def test_per_layer_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "--alpha", "0.75", "--resolution", "128")
    assert code == 0
    assert out.startswith(
        "# mnv1_a0.75_r128 (alpha=0.75, resolution=128, variant=separable, num_classes=1000)"
    )
    assert "| **total** |  |  |  | **2,568,144** | **2,601,976** | **106,770,432** |" in out
    assert "| block12_dw | Conv DW 3x3 | 8x8x384 | 4x4x384 | 3,456 | 3,456 |" in out
    assert "## Per layer type (the paper's Table 2)" in out


def test_per_layer_csv_sums_to_the_totals(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "--alpha", "0.25", "--resolution", "100", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["name"] == "image" and rows[-1]["name"] == "predictions"
    assert rows[1] == {
        "name": "conv0",
        "type": "Conv 3x3",
        "input_shape": "100x100x3",
        "output_shape": "50x50x8",
        "params": str(3 * 3 * 3 * 8),
        "keras_params": str(3 * 3 * 3 * 8),
        "mult_adds": str(3 * 3 * 3 * 8 * 50 * 50),
    }
    assert sum(int(r["params"]) for r in rows) == 463_600  # params do not depend on ρ
    assert sum(int(r["keras_params"]) for r in rows) == 475_544
    final = next(r for r in rows if r["name"] == "block13_pw")
    assert final["output_shape"] == "4x4x256"


def test_per_layer_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(
        capsys, "--variant", "shallow", "--num-classes", "10", "--alpha", "0.25", "--format", "json"
    )
    assert code == 0
    (model,) = json.loads(out)["models"]
    assert {k: model[k] for k in ("alpha", "resolution", "variant", "num_classes")} == {
        "alpha": 0.25,
        "resolution": 224,
        "variant": "shallow",
        "num_classes": 10,
    }
    assert model["name"] == "mnv1_a0.25_r224_shallow"
    assert sum(layer["mult_adds"] for layer in model["layers"]) == model["mult_adds"]
    assert sum(layer["params"] for layer in model["layers"]) == model["params"]
    assert model["shares"]["Fully Connected"]["params"] == 256 * 10
    assert sum(s["mult_adds_percent"] for s in model["shares"].values()) == pytest.approx(100)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--alpha", "0"], "model.alpha=0.0: must be a number >= 0.03125 (1/32: the first"),
        (["--resolution", "31"], "model.resolution=31: must be an integer >= 32 (pixels; five"),
        (["--resolution", "22.5"], "argument --resolution: invalid int value: '22.5'"),
        (["--num-classes", "1"], "num_classes=1: must be an integer >= 2"),
        (
            ["--variant", "mixed"],
            "model.variant='mixed': must be one of separable, full_conv, shallow",
        ),
        (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
    ],
)
def test_bad_arguments_exit_2_with_the_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_console_script_prints_the_table_first_without_tensorflow_noise() -> None:
    """``mnv1-costs 2>&1 | head -3`` shows the table, not TensorFlow's start-up lines, in a
    clean environment (no TF_CPP_MIN_LOG_LEVEL of the test run's own)."""
    root = Path(__file__).resolve().parents[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["mnv1-costs"] == "mnv1.cli.costs:main"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("mnv1-costs"))],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # 2>&1: one stream, in the order it was written
        text=True,
        env=env,
        cwd=root,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "# MobileNetV1 costs: ours (counted from the built models) beside the paper's print",
        "",
        "Paper convention: conv, depthwise and FC weights; no biases, no BatchNorm. Ours is "
        "rounded to the precision the paper prints; `erratum` marks a known error in the paper.",
    ]
    for line in lines:
        assert "absl::InitializeLog" not in line and "cudart_stub" not in line, line
        assert "cpu_feature_guard" not in line and "cuInit" not in line, line
