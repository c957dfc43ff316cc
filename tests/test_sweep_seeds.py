"""Seeds as a sweep axis, without training: the grid, run keys and names, the status matrix, the
study's ``seeds`` key, and the reproducibility tags."""

from __future__ import annotations

import dataclasses

from mnv1.tracking import schema
from mnv1.tracking.runs import CellState

from mnv1.cli.hydra_grid import check_command
from mnv1.config import TrainConfig
from mnv1.sweep.lifecycle import grid_document, seeded, status_matrix, sweep_key
from mnv1.sweep.orchestrate import SweepRef, _child_tags, child_run_name
from mnv1.sweep.run_key import run_key
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
