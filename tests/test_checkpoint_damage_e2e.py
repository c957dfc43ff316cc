"""End to end: damage never blocks a run. The real ``mnv1-train -m`` trains three tiny cells
(three seeds of one smoke cell, three epochs of two steps); each worker is SIGKILLed right after
its epoch-2 checkpoint (tests/failure_injection), leaving two checkpoints per cell. Each cell's
checkpoints are then damaged differently, and one relaunch must resume every cell in its own
MLflow run and finish it:

* the newest weights cut to 1,000 bytes (what a full disk leaves): resume from epoch 1;
* both checkpoints' weights cut: train again from scratch;
* ``latest.json`` garbled: scan the checkpoint directories and resume from epoch 2.

The three cells are three seeds of one cell, swept with Hydra's own syntax (``range(3)``), so the
finished sweep also answers the seeds check: three runs, and the report's grid shows the cell as
mean ± sd of its seeds (what a separate three-seed sweep used to be trained for). The sweep is
one module-scoped fixture; both tests only read what it left.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.entities import Run
from mnv1.tracking import schema
from mnv1.tracking.schema import PER_EPOCH_METRICS
from sweep_support import FAILURE_INJECTION, Workspace

from mnv1.cli.report import main as report_main

ARGS = (
    "-m",
    "experiment=smoke",
    "model.alpha=0.25",
    "model.resolution=32",
    "train.epochs=3",
    "train.seed=range(3)",
    # Two cells at once: both launches' wall time is mostly the cells' own start-up, which two
    # cores overlap. The damage and resume lines still reach the sweep's stderr (each worker
    # inherits it), and the checks below read runs, tags and files, not the launch order.
    "hydra/launcher=joblib",
    "hydra.launcher.n_jobs=2",
    # tracking.log_model stays as the smoke study sets it: the plan's probe is cached per
    # speed identity (mnv1.sweep.probe), which this cell then shares with other tests' sweeps.
)
CELL = "mnv1_a0.25_r32"
NEWEST, BOTH, POINTER = "mnv1_a0.25_r32_s0", "mnv1_a0.25_r32_s1", "mnv1_a0.25_r32_s2"
EPOCH1, EPOCH2, EPOCH3 = "epoch0001-step000000", "epoch0002-step000000", "epoch0003-step000000"
WEIGHTS = "state.weights.h5"
DAMAGE_LINE = "mnv1.training: damaged checkpoint in "


def _kill_after_epoch_2(ws: Workspace) -> dict[str, str]:
    path = os.pathsep.join([str(FAILURE_INJECTION), ws.env()["PYTHONPATH"]])
    return {"PYTHONPATH": path, "MNV1_TEST_KILL_AFTER_EPOCH": "2"}


def _truncate(path: Path) -> int:
    whole = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(1000)
    return whole


@dataclass
class Damaged:
    """The sweep killed after epoch 2, its checkpoints damaged, and the relaunch."""

    ws: Workspace
    killed: subprocess.CompletedProcess[str]
    runs: dict[str, Run]  # as the killed launch left them
    epochs: dict[str, list[int]]  # the val_top1 steps each had then
    folders: dict[str, Path]  # each cell's checkpoint directory
    listed: dict[str, list[str]]  # what each held before the damage
    pointers: dict[str, int]  # each latest.json's epochs_done before the damage
    sizes: dict[tuple[str, str], int]  # the cut weights' sizes as written
    done: subprocess.CompletedProcess[str]  # the relaunch


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Damaged:
    ws = Workspace(tmp_path_factory.mktemp("damaged"))
    killed = ws.train(*ARGS, env=_kill_after_epoch_2(ws))
    runs = ws.children()
    epochs = {name: ws.steps(run, "val_top1") for name, run in runs.items()}
    folders = {
        name: ws.root / ".mnv1" / "checkpoints" / run.data.tags["mnv1.run_key"]
        for name, run in runs.items()
    }
    listed = {name: sorted(p.name for p in f.iterdir()) for name, f in folders.items()}
    pointers = {
        name: json.loads((f / "latest.json").read_text())["epochs_done"]
        for name, f in folders.items()
    }
    sizes = {}
    if sorted(runs) == [NEWEST, BOTH, POINTER]:  # else the test names what the kill left
        sizes = {
            (NEWEST, EPOCH2): _truncate(folders[NEWEST] / EPOCH2 / WEIGHTS),
            (BOTH, EPOCH2): _truncate(folders[BOTH] / EPOCH2 / WEIGHTS),
            (BOTH, EPOCH1): _truncate(folders[BOTH] / EPOCH1 / WEIGHTS),
        }
        (folders[POINTER] / "latest.json").write_text('{"epochs_done": 2, "step_in')
    done = ws.train(*ARGS)
    return Damaged(ws, killed, runs, epochs, folders, listed, pointers, sizes, done)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_damaged_checkpoints_fall_back_and_every_cell_finishes_in_its_own_run(
    damaged: Damaged,
) -> None:
    ws, killed, runs = damaged.ws, damaged.killed, damaged.runs
    assert killed.returncode == 1, killed.stdout + killed.stderr
    assert sorted(runs) == [NEWEST, BOTH, POINTER]
    folders = damaged.folders
    for name, run in runs.items():
        assert run.info.status == "KILLED", name
        assert damaged.epochs[name] == [1, 2], name
        assert damaged.listed[name] == [EPOCH1, EPOCH2, "latest.json"]
        assert damaged.pointers[name] == 2

    sizes = damaged.sizes
    done = damaged.done
    output = done.stdout + done.stderr  # the workers' lines come through the sweep's stderr
    assert done.returncode == 0, output
    lines = [line for line in output.splitlines() if line.startswith(DAMAGE_LINE)]
    assert len(lines) == 3, lines  # one line per damaged cell
    expected = {
        NEWEST: (
            f"{EPOCH2}/{WEIGHTS}: truncated or altered: 1,000 bytes, "
            f"{sizes[NEWEST, EPOCH2]:,} written",
            EPOCH1,
            "1",
        ),
        BOTH: (
            f"{EPOCH2}/{WEIGHTS}: truncated or altered: 1,000 bytes, {sizes[BOTH, EPOCH2]:,} "
            f"written; {EPOCH1}/{WEIGHTS}: truncated or altered: 1,000 bytes, "
            f"{sizes[BOTH, EPOCH1]:,} written",
            "none",
            "0",
        ),
        POINTER: (
            "latest.json: is not a checkpoint record (JSONDecodeError: Unterminated string "
            "starting at: line 1 column 20 (char 19))",
            EPOCH2,
            "2",
        ),
    }
    finished = ws.children()
    for name, (damage, fallback, epoch) in expected.items():
        run = finished[name]
        assert run.info.run_id == runs[name].info.run_id, name  # the same MLflow run
        assert run.info.status == "FINISHED", name
        tags = run.data.tags
        assert tags["mnv1.checkpoint.damaged"] == damage, name
        assert tags["mnv1.checkpoint.fallback"] == fallback, name
        assert tags["mnv1.resumed_from_epoch"] == epoch, name
        assert tags["mnv1.attempt"] == "2", name
        assert f"resuming run {run.info.run_id} (was KILLED)" in output
        [line] = [line for line in lines if f"{folders[name]}: {damage}; " in line]
        then = (
            "no good checkpoint is left: training from scratch in the same run"
            if fallback == "none"
            else f"resuming from {fallback} (epoch {epoch}, step 0) in the same run"
        )
        assert line.endswith(then), line
        for key in PER_EPOCH_METRICS:
            assert ws.steps(run, key) == [1, 2, 3], (name, key)
        # Two good checkpoints again, the damaged ones replaced.
        assert sorted(p.name for p in folders[name].iterdir()) == [EPOCH2, EPOCH3, "latest.json"]
    assert len(ws.runs()) == 4  # the parent and the three cells: no run was added


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_one_cell_three_seeds_three_runs_and_mean_sd_in_the_grid(
    damaged: Damaged, capsys: pytest.CaptureFixture[str]
) -> None:
    ws, done = damaged.ws, damaged.done
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all cells FINISHED" in done.stdout

    [parent] = ws.parents()
    grid = json.loads(ws.text(parent, "grid.json"))["cells"]
    assert [(c["name"], c["seed"]) for c in grid] == [(CELL, s) for s in range(3)]
    children = ws.children()
    assert sorted(children) == [f"{CELL}_s{s}" for s in range(3)]
    keys = set()
    for seed in range(3):
        run = children[f"{CELL}_s{seed}"]
        tags = run.data.tags
        assert run.info.status == "FINISHED"
        assert tags[schema.TAG_CELL] == CELL and tags[schema.TAG_SEED] == str(seed)
        assert run.data.params["train.seed"] == str(seed)
        assert tags[schema.TAG_DATA_ORDER_SEED] == tags[schema.TAG_INIT_SEED] == str(seed)
        assert tags[schema.TAG_OP_DETERMINISM] == "off"
        assert tags[schema.TAG_DEVICE_KIND].startswith("CPU: ")
        keys.add(tags[schema.TAG_RUN_KEY])
    assert len(keys) == 3

    # The sweep's own report: one cell in the grid, shown as mean ± sd of its three seeds.
    markdown = (ws.root / "reports" / "smoke" / "report.md").read_text()
    matrix = markdown.split("α × ρ grid: validation top-1 (%), mean ± sd over seeds")[1]
    row = next(line for line in matrix.splitlines() if line.startswith("| 0.25 |"))
    assert re.fullmatch(r"\| 0\.25 \| \d+\.\d\d ± \d+\.\d\d \|", row), row
    assert f"| {CELL} | 0.25 | 32 | separable | default | finished |" in markdown
    assert "| 3/3 |" in markdown

    # Two seeds of the one cell, by run id: the pooled spread of its three seeds decides.
    ids = [children[f"{CELL}_s{s}"].info.run_id for s in (0, 1)]
    argv = ["--experiment", "smoke", "--tracking-uri", ws.uri, "--compare", *ids]
    assert report_main(argv) == 0
    out = capsys.readouterr().out
    assert f"A: run {ids[0]} ({CELL}, seed 0)" in out
    assert "difference A - B in val_top1" in out
