"""``mnv1-plan``: the real console script. A bad override is refused exactly as ``mnv1-train``
refuses it; a plan creates nothing in the directory it runs in. The fast tests seed the probe
cache with hand-made figures (so the plan's numbers are exact); the slow one measures a real
probe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sweep_support import Workspace

from mnv1.cli.hydra_grid import check_command
from mnv1.sweep.probe import ENV_PROBE_DIR, probe_key

PLAN = Path(sys.executable).with_name("mnv1-plan")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "launch").mkdir()
    return Workspace(tmp_path / "launch")


def plan(ws: Workspace, probe_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PLAN), *args, f"data.data_dir={ws.data_dir}"],
        cwd=ws.root,
        env=ws.env(**{ENV_PROBE_DIR: str(probe_dir)}),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def seed_probe(
    ws: Workspace, probe_dir: Path, monkeypatch: pytest.MonkeyPatch, *overrides: str
) -> None:
    """A cached probe for this grid: every cell 1 s per step, 12 s start-up, nothing else."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", ws.env()["CUDA_VISIBLE_DEVICES"])
    cells = [c.config for c in check_command([*overrides], multirun=True).cells]
    from mnv1.sweep.probe import shapes_of

    shapes = list(shapes_of(cells))
    point = {
        "mult_adds": 1000,
        "batch": cells[0].train.batch_size,
        "startup_s": 12.0,
        "tracking_import_s": 0.0,
        "trace_s": 0.0,
        "step_s": 1.0,
        "eval_trace_s": 0.0,
        "eval_batch_s": 0.0,
        "checkpoint_s": 0.0,
    }
    key = probe_key(cells)
    probe_dir.mkdir(parents=True, exist_ok=True)
    (probe_dir / f"{key}.json").write_text(
        json.dumps(
            {
                "host": "seeded",
                "key": key,
                "measured_at": "then",
                "points": [{**point, "shape": shapes[0]}],
                "mult_adds": dict.fromkeys(shapes, 1000),
            }
        )
    )


def test_bad_overrides_exit_2_exactly_as_mnv1_train(ws: Workspace, tmp_path: Path) -> None:
    args = ["experiment=smoke", "model.resolution=16", "train.target_minutes=-3"]
    planned = plan(ws, tmp_path / "probe", *args)
    trained = ws.train("-m", *args)
    assert planned.returncode == trained.returncode == 2
    assert planned.stderr.replace("mnv1-plan:", "mnv1-train:") == trained.stderr
    assert "train.target_minutes=-3.0: must be a number > 0 or null" in planned.stderr
    assert sorted(ws.root.iterdir()) == [] and not (tmp_path / "probe").exists()


def test_the_demo_plan_chooses_its_budget_from_the_cached_probe(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe_dir = tmp_path / "probe"
    seed_probe(ws, probe_dir, monkeypatch, "experiment=demo", f"data.data_dir={ws.data_dir}")
    done = plan(ws, probe_dir, "experiment=demo")
    assert done.returncode == 0, done.stdout + done.stderr
    # 16 cells × 12 s start-up = 192 s fixed; 1 epoch × 1 s per step × 16 cells = 16 s per step
    # of budget: (720 - 192) / 16 = 33 steps, rounded down to 30.
    assert "budget: train.steps_per_epoch=30 (480 images per cell)" in done.stdout
    assert "total (cells, one after another): 11 min 12 s" in done.stdout
    assert done.stdout.count(" 1×30 ") == 16
    assert "probe on seeded (cached, then)" in done.stdout
    assert sorted(ws.root.iterdir()) == []  # no run, no store, no directory, no dataset
    # A pinned budget wins over the target.
    pinned = plan(ws, probe_dir, "experiment=demo", "train.steps_per_epoch=7")
    assert pinned.returncode == 0 and "budget:" not in pinned.stdout
    assert "total (cells, one after another): 5 min 04 s" in pinned.stdout  # 192 + 7 × 16


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_real_probe_is_measured_once_then_cached(ws: Workspace, tmp_path: Path) -> None:
    probe_dir = tmp_path / "probe"
    first = plan(ws, probe_dir, "-m", "experiment=smoke")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "probe: timing the costliest of 4 shape(s)" in first.stderr
    assert "(measured now, " in first.stdout and "mnv1_a0.5_r48_b8_c10 " in first.stdout
    assert len(list(probe_dir.glob("*.json"))) == 1
    again = plan(ws, probe_dir, "experiment=smoke")
    assert again.returncode == 0 and "(cached, " in again.stdout and "probe:" not in again.stderr
    assert sorted(ws.root.iterdir()) == []
