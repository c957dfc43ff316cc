"""The plain-Python validator: every problem at once, each naming key, value and what is allowed."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from mnv1.config import PAPER_ALPHAS, PAPER_RESOLUTIONS, RunConfig
from mnv1.sweep.validate import (
    ConfigError,
    check,
    grid_problems,
    known_replicas,
    problems,
)


@pytest.fixture
def cfg(tmp_path: Path) -> RunConfig:
    base = RunConfig()
    base.data.data_dir = str(tmp_path / "tfds")
    return base


def with_(cfg: RunConfig, **sections: dict[str, object]) -> RunConfig:
    """A copy of ``cfg`` with fields replaced per section: with_(cfg, model={"alpha": 2})."""
    changes = {
        name: dataclasses.replace(getattr(cfg, name), **values) for name, values in sections.items()
    }
    return dataclasses.replace(cfg, **changes)


def test_default_config_is_valid(cfg: RunConfig) -> None:
    assert problems(cfg) == []
    check(cfg)  # does not raise


@pytest.mark.parametrize(
    ("section", "field", "value", "expected"),
    [
        ("model", "alpha", -1.0, "model.alpha=-1.0: must be a number >= 0.03125 (1/32: "),
        ("model", "alpha", 0.0, "model.alpha=0.0: must be a number >= 0.03125"),
        ("model", "alpha", float("nan"), "model.alpha=nan: must be a number >= 0.03125"),
        ("model", "alpha", 0.01, "model.alpha=0.01: must be a number >= 0.03125"),
        ("model", "resolution", 16, "model.resolution=16: must be an integer >= 32 (pixels"),
        (
            "model",
            "variant",
            "deep",
            "model.variant='deep': must be one of separable, full_conv, shallow",
        ),
        ("model", "activation", "gelu", "model.activation='gelu': must be one of relu6, relu"),
        ("model", "dropout", 1.0, "model.dropout=1.0: must be a number in [0, 1)"),
        ("train", "epochs", 0, "train.epochs=0: must be an integer >= 1"),
        ("train", "batch_size", 0, "train.batch_size=0: must be an integer >= 1"),
        ("train", "steps_per_epoch", 0, "train.steps_per_epoch=0: must be an integer >= 1 or null"),
        ("train", "target_minutes", 0.0, "train.target_minutes=0.0: must be a number > 0 or null"),
        ("train", "optimizer", "adam", "train.optimizer='adam': must be one of rmsprop, sgd"),
        (
            "train",
            "precision",
            "fp8",
            "train.precision='fp8': must be one of float32, mixed_float16",
        ),
        ("train", "learning_rate", 0.0, "train.learning_rate=0.0: must be a number in (0, 100]"),
        (
            "train",
            "learning_rate",
            200.0,
            "train.learning_rate=200.0: must be a number in (0, 100]",
        ),
        ("train", "seed", -1, "train.seed=-1: must be an integer in [0, 4294967295]"),
        (
            "train",
            "warmup_epochs",
            3.0,
            "train.warmup_epochs=3.0: must be a number in [0, train.epochs=1)",
        ),
        (
            "train",
            "jit_compile",
            "maybe",
            "train.jit_compile='maybe': must be one of auto, true, false",
        ),
        (
            "distribute",
            "strategy",
            "tpu",
            "distribute.strategy='tpu': must be one of auto, mirrored",
        ),
        (
            "distribute",
            "cpu_replicas",
            0,
            "distribute.cpu_replicas=0: must be an integer >= 1 or null",
        ),
        (
            "distribute",
            "intra_op_threads",
            0,
            "distribute.intra_op_threads=0: must be an integer >= 1 or null",
        ),
        ("tracking", "experiment", "", "tracking.experiment='': must be a non-empty string"),
    ],
)
def test_each_bad_value_is_named_with_what_is_allowed(
    cfg: RunConfig, section: str, field: str, value: object, expected: str
) -> None:
    found = problems(with_(cfg, **{section: {field: value}}))
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_at_once(cfg: RunConfig) -> None:
    bad = with_(cfg, model={"alpha": -1.0, "resolution": 16}, train={"epochs": 0})
    found = problems(bad)
    assert [p.split(":")[0] for p in found] == [
        "model.alpha=-1.0",
        "model.resolution=16",
        "train.epochs=0",
    ]
    with pytest.raises(ConfigError) as err:
        check(bad)
    assert isinstance(err.value, ValueError)
    assert err.value.problems == found
    assert "model.alpha=-1.0" in str(err.value) and "train.epochs=0" in str(err.value)


def test_batch_must_divide_by_the_replicas_the_config_fixes(cfg: RunConfig) -> None:
    two_cpu = with_(
        cfg, distribute={"strategy": "mirrored", "cpu_replicas": 2}, train={"batch_size": 9}
    )
    assert known_replicas(two_cpu) == [("distribute.cpu_replicas", 2)]
    assert problems(two_cpu) == [
        "train.batch_size=9: the global batch must divide evenly by the 2 replicas of "
        "distribute.cpu_replicas=2 (e.g. 8 or 10)"
    ]
    three_devices = with_(
        cfg, distribute={"devices": ["/cpu:0", "/cpu:1", "/cpu:2"]}, train={"batch_size": 32}
    )
    assert known_replicas(three_devices) == [("distribute.devices", 3)]
    assert "train.batch_size=32" in problems(three_devices)[0]
    gpus = with_(cfg, distribute={"gpus_per_run": 4}, train={"batch_size": 2})
    assert "replicas of distribute.gpus_per_run=4 (e.g. 4)" in problems(gpus)[0]
    # gpus_per_run=0 hides the GPUs: a CPU run, no GPU replicas to divide by.
    cpu = with_(cfg, distribute={"gpus_per_run": 0}, train={"batch_size": 9})
    assert known_replicas(cpu) == [] and problems(cpu) == []
    assert problems(with_(cfg, distribute={"gpus_per_run": -1}))[0].startswith(
        "distribute.gpus_per_run=-1: must be an integer >= 0 or null"
    )
    # One device has one replica whatever cpu_replicas says; auto alone depends on the host.
    one = with_(
        cfg, distribute={"strategy": "one_device", "cpu_replicas": 2}, train={"batch_size": 9}
    )
    assert known_replicas(one) == [] and problems(one) == []
    assert known_replicas(with_(cfg, train={"batch_size": 9})) == []
    ok = with_(cfg, distribute={"cpu_replicas": 2}, train={"batch_size": 8})
    assert problems(ok) == []


def test_data_problems_come_from_the_data_layer(cfg: RunConfig) -> None:
    unknown = with_(cfg, data={"source": "tfds", "name": "no_such_dataset"})
    found = problems(unknown)
    assert len(found) == 1
    assert found[0].startswith("data.name='no_such_dataset' is not prepared")
    assert problems(with_(cfg, data={"source": "ftp"})) == [
        "data.source='ftp': must be one of synthetic, tfds, folder"
    ]


def grid(cfg: RunConfig, alphas: list[float], resolutions: list[int]) -> list[RunConfig]:
    return [with_(cfg, model={"alpha": a, "resolution": r}) for a in alphas for r in resolutions]


def test_grid_reports_a_bad_cell_once_and_names_it(cfg: RunConfig) -> None:
    cells = grid(cfg, list(PAPER_ALPHAS), [224, 192, 160, 17])
    assert len(cells) == 16
    assert grid_problems(cells) == [
        "model.resolution=17: must be an integer >= 32 (pixels; five stride-2 layers; the paper: "
        "224, 192, 160, 128) (in 4 of 16 cells: mnv1_a1.0_r17, mnv1_a0.75_r17, mnv1_a0.5_r17, "
        "mnv1_a0.25_r17)"
    ]
    assert grid_problems(grid(cfg, list(PAPER_ALPHAS), list(PAPER_RESOLUTIONS))) == []


def test_grid_says_when_every_cell_has_the_problem(cfg: RunConfig) -> None:
    cells = grid(with_(cfg, train={"epochs": 0}), [0.25, 0.5], [32, 48])
    assert grid_problems(cells) == ["train.epochs=0: must be an integer >= 1 (all 4 cells)"]
    # A single config is not a grid: no cell count.
    assert grid_problems(cells[:1]) == ["train.epochs=0: must be an integer >= 1"]


def test_validator_imports_neither_tensorflow_nor_hydra() -> None:
    code = (
        "import sys, mnv1.sweep.validate; "
        "heavy = ('tensorflow', 'keras', 'hydra', 'omegaconf', 'mlflow'); "
        "bad = [m for m in heavy if m in sys.modules]; "
        "sys.exit(str(bad) if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
