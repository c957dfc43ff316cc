"""One place builds a cell's name (``mnv1.config.run_name``): runs, grid, messages and Hydra's
per-cell folders all read it from there."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from mnv1.config import RunConfig, cell_name, run_name
from mnv1.hydra_app.store import CELL_NAME_RESOLVER
from mnv1.sweep.validate import grid_problems

CONF = Path(__file__).resolve().parents[1] / "conf" / "config.yaml"


def test_run_name_reads_the_same_for_every_alpha() -> None:
    assert run_name(1.0, 224) == "mnv1_a1.0_r224"
    assert run_name(1, 224) == "mnv1_a1.0_r224"
    assert run_name(0.75, 160) == "mnv1_a0.75_r160"
    assert run_name(0.5, 128, "shallow") == "mnv1_a0.5_r128_shallow"
    # A value that failed validation still names its cell in the error message.
    assert run_name("abc", 32) == "mnv1_aabc_r32"  # type: ignore[arg-type]


def test_cell_name_is_run_name_of_the_model_coordinates() -> None:
    cfg = RunConfig()
    cfg.model.alpha, cfg.model.resolution, cfg.model.variant = 0.25, 48, "full_conv"
    assert cell_name(cfg) == "mnv1_a0.25_r48_full_conv"


def test_a_rejected_cell_is_named_by_the_value_that_failed() -> None:
    # grid_problems names the cells a problem occurs in with the very value that failed, so a
    # bad α inside a grid points at its cell rather than at "a cell".
    good, bad = RunConfig(), RunConfig()
    bad.model.alpha = "abc"  # type: ignore[assignment]
    (line,) = [p for p in grid_problems([good, bad]) if "model.alpha" in p]
    assert "in 1 of 2 cells: mnv1_aabc_r224" in line


def test_hydra_cell_folders_carry_the_cell_name() -> None:
    sweep = OmegaConf.to_container(OmegaConf.load(CONF).hydra.sweep, resolve=False)
    assert isinstance(sweep, dict)
    subdir = sweep["subdir"]
    assert f"${{{CELL_NAME_RESOLVER}:" in subdir
    node = OmegaConf.create(
        {
            "model": {"alpha": 0.75, "resolution": 160, "variant": "separable"},
            "hydra": {"job": {"num": 3}},
        }
    )
    node.subdir = subdir
    assert node.subdir == "3_mnv1_a0.75_r160"
