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
from probe_support import write_probe
from sweep_support import Workspace

from mnv1.cli.plan import PlanError, planned
from mnv1.hydra_app.grid import check_command
from mnv1.sweep.plan import format_plan
from mnv1.sweep.probe import ENV_PROBE_DIR

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
    write_probe(probe_dir, [c.config for c in check_command([*overrides], multirun=True).cells])


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
    # Started as the smoke cells' workers are (warm, the default): forked from the zygote that
    # the probe started, whose start is recorded apart.
    assert "probe: timing the costliest of 4 shape(s), a short run forked as the cells will be" in (
        first.stderr
    )
    assert "(measured now, " in first.stdout and "mnv1_a0.5_r48_b8_c10 " in first.stdout
    [cached] = probe_dir.glob("*.json")
    zygote_start_s = json.loads(cached.read_text())["zygote_start_s"]
    assert isinstance(zygote_start_s, float) and zygote_start_s > 0
    # This launch's zygote is up (the probe started it): its cells would not pay its start.
    assert "warm workers' start" not in first.stdout
    again = plan(ws, probe_dir, "experiment=smoke")
    assert again.returncode == 0 and "(cached, " in again.stdout and "probe:" not in again.stderr
    # A launch with the probe cached starts the zygote at its first cell: the plan counts it once.
    assert "warm workers' start (once, at the first cell)" in again.stdout
    assert sorted(ws.root.iterdir()) == []


def imagenet_args(tmp_path: Path) -> list[str]:
    """tradeoff16 with the two ImageNet archives in place (empty: the plan never opens them)."""
    manual = tmp_path / "manual"
    manual.mkdir()
    for name in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"):
        (manual / name).touch()
    return ["experiment=tradeoff16", f"data.manual_dir={manual}"]


def test_tradeoff16_plans_imagenets_steps_and_images_without_a_probe_on_a_cpu(
    ws: Workspace, tmp_path: Path
) -> None:
    """ImageNet's split sizes are known before it is prepared (1,281,167 training images: 5,004
    steps of 256 per epoch); on a machine without a GPU the study made for GPUs is not probed,
    and the plan says where an estimate comes from."""
    probe_dir = tmp_path / "probe"
    done = plan(ws, probe_dir, *imagenet_args(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith("  mnv1_a")]
    assert len(rows) == 16
    for row in rows:
        assert row.split()[2:5] == ["100×5004", "128,102,400", "?"], row
    assert "no estimate: this study is made for GPUs (train.precision=mixed_float16)" in done.stdout
    assert "on the training hardware" in done.stdout
    assert "probe:" not in done.stderr and not probe_dir.exists()  # no probe ran
    assert sorted(ws.root.iterdir()) == []


def test_imagenet_is_estimated_where_a_gpu_is_visible(
    ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a GPU visible (and its probe cached) the same plan estimates every cell."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setenv(ENV_PROBE_DIR, str(tmp_path / "probe"))
    args = [*imagenet_args(tmp_path), f"data.data_dir={ws.data_dir}"]
    grid = check_command(args, multirun=True)
    write_probe(tmp_path / "probe", [c.config for c in grid.cells])
    said: list[str] = []
    result = planned(
        args, grid, check=lambda items: check_command(items, multirun=True), say=said.append
    )
    assert said == [] and result.probe_error is None and result.plan.no_estimate is None
    cells = result.plan.cells
    assert {(c.steps, c.images) for c in cells} == {(500_400, 128_102_400)}
    # 12 s start-up + 100 epochs × 5,004 steps × 1 s.
    assert {c.seconds for c in cells} == {12 + 500_400}
    assert "  total (cells, one after another): 2224 h 03 min" in format_plan(result.plan)


def test_a_split_of_unknown_size_runs_no_probe_and_says_what_it_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mnist is downloadable (so valid) but not prepared, and its size is not published here."""
    monkeypatch.setenv(ENV_PROBE_DIR, str(tmp_path / "probe"))
    args = [
        "experiment=smoke",
        "data=tfds",
        "data.name=mnist",
        "data.download=true",
        f"data.data_dir={tmp_path / 'tfds'}",
        "train.steps_per_epoch=null",
    ]
    grid = check_command(args, multirun=True)
    assert grid.errors == []
    said: list[str] = []
    result = planned(
        args, grid, check=lambda items: check_command(items, multirun=True), say=said.append
    )
    assert said == [] and not (tmp_path / "probe").exists()  # no probe ran, none was cached
    assert result.plan.probe is None and {c.steps for c in result.plan.cells} == {None}
    text = format_plan(result.plan)
    assert (
        "  no estimate: the size of data.train_split='train' of data.name='mnist' is not known "
        "before the dataset is prepared: an estimate needs it (prepare the dataset first, and "
        "TFDS records it) or train.steps_per_epoch=N"
    ) in text
    # A wall-time target cannot choose a budget without a probe: the error says what to pin.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    gpu_args = [*args, "train.target_minutes=5", "train.precision=mixed_float16"]
    with pytest.raises(PlanError, match=r"needs a probe, but this study is made for GPUs"):
        planned(
            gpu_args,
            check_command(gpu_args, multirun=True),
            check=lambda items: check_command(items, multirun=True),
        )
    assert not (tmp_path / "probe").exists()
