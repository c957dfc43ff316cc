"""Seeds as a sweep axis, without training: the grid, run keys and names, the status matrix, the
study's ``seeds`` key, and the reproducibility tags."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from mnv1.tracking import schema
from mnv1.tracking.runs import CellState
from probe_support import write_probe

from mnv1.cli.plan import Planned, planned
from mnv1.config import TrainConfig
from mnv1.hydra_app.grid import Expansion, check_command
from mnv1.run_key import run_key
from mnv1.sweep.lifecycle import grid_document, seeded, status_matrix, sweep_key
from mnv1.sweep.orchestrate import SweepRef, _child_tags, child_run_name
from mnv1.sweep.probe import ENV_PROBE_DIR
from mnv1.training.repro import cpu_model, device_kind, reproducibility_tags

ONE_CELL = ["experiment=smoke", "model.alpha=0.25", "model.resolution=32"]


def test_hydra_range_sweeps_seeds_one_run_key_each() -> None:
    found = check_command([*ONE_CELL, "train.seed=range(3)"], multirun=True)
    assert found.errors == [] and found.added == []
    cells = [c.config for c in found.cells]
    assert [c.train.seed for c in cells] == [0, 1, 2]
    assert len({run_key(c) for c in cells}) == 3
    assert seeded(cells)
    doc = grid_document(cells)["cells"]
    assert [(c["name"], c["seed"]) for c in doc] == [("mnv1_a0.25_r32", s) for s in range(3)]
    assert [child_run_name(c, True) for c in cells] == [f"mnv1_a0.25_r32_s{s}" for s in range(3)]
    assert child_run_name(cells[0], False) == "mnv1_a0.25_r32"


def test_a_studys_seeds_key_adds_the_seed_axis() -> None:
    found = check_command([*ONE_CELL, "seeds=3"], multirun=True)
    assert found.errors == []
    assert found.added == ["train.seed=range(3)"]
    assert [c.config.train.seed for c in found.cells] == [0, 1, 2]
    # The number of seeds is not part of a run's identity: seed 0 is the same run either way.
    single = check_command(ONE_CELL, multirun=True).cells[0].config
    assert run_key(found.cells[0].config) == run_key(single)
    assert not seeded([single])
    # The command line's own train.seed wins over the study's seeds.
    explicit = check_command([*ONE_CELL, "seeds=3", "train.seed=7"], multirun=True)
    assert explicit.added == [] and [c.config.train.seed for c in explicit.cells] == [7]
    # A single run ignores it.
    assert check_command([*ONE_CELL, "seeds=3"], multirun=False).added == []


def test_bad_seed_values_are_named_before_anything_runs() -> None:
    found = check_command([*ONE_CELL, "seeds=0"], multirun=True)
    assert found.errors == [
        "seeds=0: must be an integer >= 1 (runs per cell, train.seed = 0 … seeds−1)"
    ]
    found = check_command([*ONE_CELL, "train.seed=-1"], multirun=True)
    assert found.errors == ["train.seed=-1: must be an integer in [0, 4294967295]"]


def test_seeded_sweeps_name_their_runs_per_seed_through_the_environment() -> None:
    ref = SweepRef("run123", "key456", "7", "sqlite:////tmp/x.db", seeded=True)
    assert SweepRef.from_env(ref.env()) == ref
    assert SweepRef.from_env({**ref.env(), SweepRef.ENV_SEEDED: "0"}) == dataclasses.replace(
        ref, seeded=False
    )


def test_child_runs_are_tagged_with_their_cell_and_seed() -> None:
    cfg = check_command([*ONE_CELL, "train.seed=2"], multirun=True).cells[0].config
    tags = _child_tags(cfg, run_key(cfg), None)
    assert tags[schema.TAG_CELL] == "mnv1_a0.25_r32"
    assert tags[schema.TAG_SEED] == "2"


def test_status_matrix_shows_a_cells_seeds_together() -> None:
    cells = [
        c.config for c in check_command([*ONE_CELL, "train.seed=range(3)"], multirun=True).cells
    ]
    keys = [run_key(c) for c in cells]
    states = {
        keys[0]: CellState(keys[0], "FINISHED", 0.25, 0.5),
        keys[1]: CellState(keys[1], "FINISHED", 0.125, 0.5),
        keys[2]: CellState(keys[2], "FAILED", None, 0.25),
    }
    # mean 18.75, sd of (25, 12.5) = 8.84
    assert status_matrix(cells, states).splitlines()[2] == (
        "| 0.25 | 2/3 seeds FINISHED · 18.8 ± 8.8% · 1.2 min |"
    )
    assert sweep_key(cells) != sweep_key(cells[:1])


def test_reproducibility_tags() -> None:
    train = TrainConfig(seed=5, deterministic=True)
    cpu = ["/job:localhost/replica:0/task:0/device:CPU:0"]
    assert reproducibility_tags(train, cpu) == {
        schema.TAG_OP_DETERMINISM: "on",
        schema.TAG_DATA_ORDER_SEED: "5",
        schema.TAG_INIT_SEED: "5",
        schema.TAG_DEVICE_KIND: f"CPU: {cpu_model()}",
    }
    assert cpu_model() and cpu_model() != "unknown"
    gpus = ["/job:localhost/replica:0/task:0/device:GPU:0", "/device:GPU:1"]
    assert device_kind(gpus, ["NVIDIA H200", "NVIDIA H200"]) == "GPU: NVIDIA H200"
    off = reproducibility_tags(TrainConfig(), cpu)
    assert off[schema.TAG_OP_DETERMINISM] == "off" and off[schema.TAG_INIT_SEED] == "0"


def _demo_plan(expansion: Expansion | None, *overrides: str) -> Planned:
    """What ``mnv1-train -m experiment=demo OVERRIDES`` plans before its first cell."""

    def check(items: list[str]) -> Expansion:
        return check_command(items, multirun=True)

    args = ["experiment=demo", *overrides]
    return planned(args, expansion or check(args), check=check, say=lambda _: None)


def test_three_seeds_of_the_demo_train_its_budget_and_seed_0_is_the_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 12-minute target is chosen per cell, not shared among seeds: 48 runs at the plain
    demo's budget (3 × its cost), and seed 0's runs have the plain demo's run keys. The run key
    is what a launch skips by (``mnv1.sweep.orchestrate._open_run``: a FINISHED run with the
    cell's key is skipped), so after the seeded sweep a relaunch of the plain demo finds all 16
    of its runs FINISHED and adds none. A study's ``seeds: 3`` adds the same
    ``train.seed=range(3)`` (``test_a_studys_seeds_key_adds_the_seed_axis``)."""
    monkeypatch.setenv(ENV_PROBE_DIR, str(tmp_path))
    grid = check_command(["experiment=demo"], multirun=True)
    write_probe(tmp_path, [c.config for c in grid.cells])
    plain, seeded = _demo_plan(grid), _demo_plan(None, "train.seed=range(3)")
    # 16 × 12 s fixed, 16 s per step of budget: (720 - 192) / 16 = 33, rounded down to 30.
    assert plain.overrides == seeded.overrides == ["train.steps_per_epoch=30"]
    assert len(plain.plan.cells) == 16 and len(seeded.plan.cells) == 48
    assert {c.steps_per_epoch for c in seeded.plan.cells} == {30}
    assert seeded.plan.budget is not None and seeded.plan.budget.seeds == 3
    assert plain.plan.total_s == pytest.approx(192 + 30 * 16)
    assert seeded.plan.total_s == pytest.approx(3 * (192 + 30 * 16))
    seed0 = [run_key(c.config) for c in seeded.expansion.cells if c.config.train.seed == 0]
    assert seed0 == [run_key(c.config) for c in plain.expansion.cells]
    assert len({run_key(c.config) for c in seeded.expansion.cells}) == 48
