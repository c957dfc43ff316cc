"""The sweep's pieces without training: studies and their grids, sweep keys, the grid document,
the status matrix, exit statuses, GPU slots."""

from __future__ import annotations

import dataclasses
import signal
from importlib.resources import files
from pathlib import Path

import pytest
from mnv1.tracking.runs import CellState

from mnv1.config import RunConfig
from mnv1.hydra_app.grid import check_command
from mnv1.hydra_app.store import known_studies
from mnv1.run_key import run_key
from mnv1.sweep.gpu_slots import gpu_slot, slices, visible_gpus
from mnv1.sweep.lifecycle import grid_document, status_matrix, sweep_key
from mnv1.sweep.orchestrate import SweepRef, exit_status

STUDIES = ["demo", "smoke", "table4", "table5", "table6", "table7", "table8_9", "tradeoff16"]


def coords(study: str, *overrides: str) -> tuple[list[tuple[float, int, str]], list[str]]:
    found = check_command([f"experiment={study}", *overrides], multirun=True)
    cells = [
        (c.config.model.alpha, c.config.model.resolution, c.config.model.variant)
        for c in found.cells
    ]
    return cells, found.errors


def test_every_study_is_registered_and_headed_by_question_command_cost() -> None:
    assert known_studies() == STUDIES
    for name in STUDIES:
        text = files("mnv1.experiments").joinpath(f"{name}.yaml").read_text()
        head = [line for line in text.splitlines() if line.startswith("#")]
        assert head[0].startswith("# Question: "), name
        assert any(
            line.startswith(f"# Command:  mnv1-train -m experiment={name}") for line in head
        ) or (name == "demo" and "# Command:  make demo" in text), name
        assert any(line.startswith("# Expected cost: ") for line in head), name
        assert f"study: {name}" in text


def test_study_grids(tmp_path: Path) -> None:
    paper = [1.0, 0.75, 0.5, 0.25]
    rhos = [224, 192, 160, 128]
    cells, errors = coords("demo", f"data.data_dir={tmp_path}")
    assert errors == []
    assert cells == [(a, r, "separable") for a in paper for r in rhos]
    cells, errors = coords("smoke", f"data.data_dir={tmp_path}")
    assert errors == [] and cells == [
        (0.25, 32, "separable"),
        (0.25, 48, "separable"),
        (0.5, 32, "separable"),
        (0.5, 48, "separable"),
    ]
    # The paper's studies need ImageNet; expanding them works and names what is missing.
    expected = {
        "tradeoff16": [(a, r, "separable") for a in paper for r in rhos],
        "table4": [(1.0, 224, "separable"), (1.0, 224, "full_conv")],
        "table5": [(0.75, 224, "separable"), (1.0, 224, "shallow")],
        "table6": [(a, 224, "separable") for a in paper],
        "table7": [(1.0, r, "separable") for r in rhos],
        "table8_9": [(1.0, 224, "separable"), (0.5, 160, "separable")],
    }
    for study, grid in expected.items():
        cells, errors = coords(study, f"data.data_dir={tmp_path}", f"data.manual_dir={tmp_path}")
        assert cells == grid, study
        assert len(errors) == 1 and errors[0].startswith(
            f"data.manual_dir={str(tmp_path)!r} lacks ILSVRC2012_img_train.tar, "
            "ILSVRC2012_img_val.tar"
        ), study
        assert "data.name='imagenet2012' is not prepared" in errors[0], study


def test_a_sweep_records_into_one_experiment(tmp_path: Path) -> None:
    _, errors = coords("smoke", f"data.data_dir={tmp_path}", "tracking.experiment=a,b")
    assert errors == [
        "tracking.experiment takes the values 'a', 'b' across the grid: a sweep has one"
    ]


def smoke_cells() -> list[RunConfig]:
    found = check_command(["experiment=smoke"], multirun=True)
    return [c.config for c in found.cells]


def test_sweep_key_covers_the_cells_not_where_they_are_tracked() -> None:
    cells = smoke_cells()
    key = sweep_key(cells)
    assert len(key) == 16 and sweep_key(list(reversed(cells))) == key
    moved = [
        dataclasses.replace(c, tracking=dataclasses.replace(c.tracking, uri="sqlite:////x.db"))
        for c in cells
    ]
    assert sweep_key(moved) == key
    assert sweep_key(cells[:3]) != key
    longer = [dataclasses.replace(c, train=dataclasses.replace(c.train, epochs=3)) for c in cells]
    assert sweep_key(longer) != key


def test_grid_document_is_what_the_report_reads() -> None:
    cells = smoke_cells()
    assert grid_document(cells) == {
        "cells": [
            {
                "name": "mnv1_a0.25_r32",
                "alpha": 0.25,
                "resolution": 32,
                "variant": "separable",
                "seed": 0,
                "run_key": run_key(cells[0]),
            },
            {
                "name": "mnv1_a0.25_r48",
                "alpha": 0.25,
                "resolution": 48,
                "variant": "separable",
                "seed": 0,
                "run_key": run_key(cells[1]),
            },
            {
                "name": "mnv1_a0.5_r32",
                "alpha": 0.5,
                "resolution": 32,
                "variant": "separable",
                "seed": 0,
                "run_key": run_key(cells[2]),
            },
            {
                "name": "mnv1_a0.5_r48",
                "alpha": 0.5,
                "resolution": 48,
                "variant": "separable",
                "seed": 0,
                "run_key": run_key(cells[3]),
            },
        ]
    }


def test_status_matrix() -> None:
    cells = smoke_cells()
    keys = [run_key(c) for c in cells]
    states = {
        keys[0]: CellState(keys[0], "FINISHED", 0.1875, 0.31),
        keys[1]: CellState(keys[1], "FINISHED", 0.09375, 0.25),
        keys[2]: CellState(keys[2], "FAILED", None, 0.1),
        keys[3]: CellState(keys[3]),
    }
    assert status_matrix(cells, states) == (
        "| α \\ ρ | 48 | 32 |\n"
        "|---|---|---|\n"
        "| 0.5 | MISSING · — · — | FAILED · — · 0.1 min |\n"
        "| 0.25 | FINISHED · 9.4% · 0.2 min | FINISHED · 18.8% · 0.3 min |\n"
    )


def test_status_matrix_rows_carry_the_variant_when_a_grid_mixes_them() -> None:
    cells = [
        c.config
        for c in check_command(["experiment=table5", "data=synthetic"], multirun=True).cells
    ]
    states = {run_key(c): CellState(run_key(c), "FINISHED", 0.5, 1.0) for c in cells}
    assert status_matrix(cells, states).splitlines()[2:] == [
        "| 0.75 separable | FINISHED · 50.0% · 1.0 min |",
        "| 1 shallow | FINISHED · 50.0% · 1.0 min |",
    ]


def test_exit_status() -> None:
    assert exit_status(0) == ("FINISHED", "exit 0")
    assert exit_status(1) == ("FAILED", "exit 1")
    assert exit_status(-signal.SIGKILL) == ("KILLED", "signal 9 (SIGKILL)")
    assert exit_status(-signal.SIGTERM) == ("KILLED", "signal 15 (SIGTERM)")


def test_sweep_ref_travels_through_the_environment() -> None:
    ref = SweepRef("run123", "key456", "7", "sqlite:////tmp/x.db")
    assert SweepRef.from_env(ref.env()) == ref
    assert SweepRef.from_env({}) is None


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1, 3")
    assert visible_gpus() == ["0", "1", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == []


def test_gpu_slots_are_disjoint_and_freed(tmp_path: Path) -> None:
    gpus = ["0", "1", "2", "3", "4"]
    assert slices(gpus, 2) == [["0", "1"], ["2", "3"]]  # GPU 4 stays unused
    with pytest.raises(ValueError, match=r"gpus_per_run=8 but this host shows only 5 GPU"):
        slices(gpus, 8)
    with gpu_slot(2, tmp_path, gpus) as first, gpu_slot(2, tmp_path, gpus) as second:
        assert (first, second) == ("0,1", "2,3")
    with gpu_slot(2, tmp_path, gpus) as again:
        assert again == "0,1"
    with gpu_slot(None, tmp_path, gpus) as unrestricted, gpu_slot(0, tmp_path, gpus) as cpu_only:
        assert unrestricted is None and cpu_only is None
    with gpu_slot(1, tmp_path, []) as no_gpu:
        assert no_gpu is None
