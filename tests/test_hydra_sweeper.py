"""The pieces of ``mnv1-train -m``'s sweeper that work without a launch: a chosen budget applied to
the composed grid without composing it again, and the config loader a launcher is handed (the
end-to-end count of compositions is in tests/test_sweep_e2e.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.global_hydra import GlobalHydra

from mnv1.hydra_app.grid import (
    check_command,
    compose_master,
    expand_master,
    make_hydra,
    with_overrides,
)
from mnv1.hydra_app.sweeper import ComposedLoader, with_env

SMOKE = ["experiment=smoke"]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every composition from here on, as its overrides."""
    calls: list[str] = []
    original = ConfigLoaderImpl.load_configuration

    def load_configuration(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(" ".join(kwargs.get("overrides", args[1] if len(args) > 1 else [])))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ConfigLoaderImpl, "load_configuration", load_configuration)
    return calls


@pytest.fixture
def smoke(counted: list[str]) -> Iterator[tuple[Any, Any]]:
    hydra = make_hydra()
    master = compose_master(hydra, SMOKE, multirun=True)
    assert master.config is not None and not master.errors
    grid = expand_master(hydra.config_loader, master.config, multirun=True)
    assert not grid.errors
    yield hydra, grid
    GlobalHydra.instance().clear()


def test_the_grid_is_the_master_and_four_cells_each_composed_once(
    smoke: tuple[Any, Any], counted: list[str]
) -> None:
    _, grid = smoke
    assert len(counted) == 1 + 4
    assert [c.overrides[:2] for c in grid.cells] == [
        ["model.alpha=0.25", "model.resolution=32"],
        ["model.alpha=0.25", "model.resolution=48"],
        ["model.alpha=0.5", "model.resolution=32"],
        ["model.alpha=0.5", "model.resolution=48"],
    ]
    assert all(c.composed is not None for c in grid.cells)


def test_a_chosen_budget_reaches_every_cell_without_composing_again(
    smoke: tuple[Any, Any], counted: list[str]
) -> None:
    _, grid = smoke
    before = len(counted)
    budgeted = with_overrides(grid, ["train.steps_per_epoch=7"])
    assert len(counted) == before
    assert not budgeted.errors
    assert [c.config.train.steps_per_epoch for c in budgeted.cells] == [7, 7, 7, 7]
    assert [c.config.train.steps_per_epoch for c in grid.cells] == [2, 2, 2, 2]  # untouched
    assert all(c.overrides[-1] == "train.steps_per_epoch=7" for c in budgeted.cells)
    assert all(
        list(c.composed.hydra.overrides.task)[-1] == "train.steps_per_epoch=7"
        for c in budgeted.cells
    )
    # Everything else as composed: same cells, same order.
    assert [c.config.model for c in budgeted.cells] == [c.config.model for c in grid.cells]


def test_a_bad_budget_value_is_refused_with_its_key(smoke: tuple[Any, Any]) -> None:
    _, grid = smoke
    refused = with_overrides(grid, ["train.steps_per_epoch=abc"])
    assert refused.errors == [
        "train.steps_per_epoch=abc: Value 'abc' of type 'str' could not be converted to Integer"
    ]


def test_the_launcher_gets_copies_of_the_composed_cells(
    smoke: tuple[Any, Any], counted: list[str]
) -> None:
    hydra, grid = smoke
    composed = {tuple(c.overrides): c.composed for c in grid.cells}
    loader = ComposedLoader(hydra.config_loader, composed)
    before = len(counted)
    first = grid.cells[0]
    job = loader.load_sweep_config(first.composed, list(first.overrides))
    assert len(counted) == before  # served from the sweep, not composed
    assert job == first.composed and job is not first.composed
    with_env(job, {"MNV1_X": "1"})  # a launcher sets the job's number and such on its copy
    assert "MNV1_X" not in first.composed.hydra.job.env_set
    # A job the sweeper did not compose is composed by Hydra's own loader.
    other = loader.load_sweep_config(first.composed, ["model.alpha=0.75", "model.resolution=32"])
    assert len(counted) == before + 1
    assert other.model.alpha == 0.75


def test_the_budget_on_the_composed_grid_is_what_composing_with_it_gives(
    smoke: tuple[Any, Any],
) -> None:
    _, grid = smoke
    budgeted = with_overrides(grid, ["train.steps_per_epoch=7"])
    composed = check_command([*SMOKE, "train.steps_per_epoch=7"], multirun=True)
    assert not composed.errors
    # Equal RunConfigs: equal run keys, so a relaunch finds the same runs either way.
    assert [c.config for c in budgeted.cells] == [c.config for c in composed.cells]
