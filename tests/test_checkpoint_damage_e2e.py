"""End to end: damage never blocks a run. The real ``mnv1-train -m`` trains three tiny cells
(three seeds of one smoke cell, three epochs of two steps); each worker is SIGKILLed right after
its epoch-2 checkpoint (tests/failure_injection), leaving two checkpoints per cell. Each cell's
checkpoints are then damaged differently, and one relaunch must resume every cell in its own
MLflow run and finish it:

* the newest weights cut to 1,000 bytes (what a full disk leaves): resume from epoch 1;
* both checkpoints' weights cut: train again from scratch;
* ``latest.json`` garbled: scan the checkpoint directories and resume from epoch 2.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mnv1.tracking.schema import PER_EPOCH_METRICS
from sweep_support import FAILURE_INJECTION, Workspace

ARGS = (
    "-m",
    "experiment=smoke",
    "model.alpha=0.25",
    "model.resolution=32",
    "train.epochs=3",
    "train.seed=0,1,2",
)
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


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_damaged_checkpoints_fall_back_and_every_cell_finishes_in_its_own_run(
    ws: Workspace,
) -> None:
    killed = ws.train(*ARGS, env=_kill_after_epoch_2(ws))
    assert killed.returncode == 1, killed.stdout + killed.stderr
    runs = ws.children()
    assert sorted(runs) == [NEWEST, BOTH, POINTER]
    folders = {}
    for name, run in runs.items():
        assert run.info.status == "KILLED", name
        assert ws.steps(run, "val_top1") == [1, 2], name
        folder = ws.root / ".mnv1" / "checkpoints" / run.data.tags["mnv1.run_key"]
        assert sorted(p.name for p in folder.iterdir()) == [EPOCH1, EPOCH2, "latest.json"]
        assert json.loads((folder / "latest.json").read_text())["epochs_done"] == 2
        folders[name] = folder

    sizes = {
        (NEWEST, EPOCH2): _truncate(folders[NEWEST] / EPOCH2 / WEIGHTS),
        (BOTH, EPOCH2): _truncate(folders[BOTH] / EPOCH2 / WEIGHTS),
        (BOTH, EPOCH1): _truncate(folders[BOTH] / EPOCH1 / WEIGHTS),
    }
    (folders[POINTER] / "latest.json").write_text('{"epochs_done": 2, "step_in')

    done = ws.train(*ARGS)
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
