"""The plan's arithmetic, the budget a wall-time target chooses, and the live progress line: pure
functions over hand-made probe figures, so every number below is exact."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from mnv1.config import RunConfig
from mnv1.sweep import plan as planning
from mnv1.sweep.plan import (
    CellPlan,
    Plan,
    Probe,
    ProbePoint,
    SweepProgress,
    choose_steps,
    duration,
    format_plan,
    make_plan,
    progress_bar,
    progress_line,
    shape_of,
    with_steps,
)


def cell(alpha: float, resolution: int, steps: int | None = 10) -> RunConfig:
    cfg = RunConfig()
    cfg.model.alpha, cfg.model.resolution = alpha, resolution
    cfg.train.epochs, cfg.train.steps_per_epoch, cfg.train.batch_size = 2, steps, 10
    cfg.train.bn_recalibration_batches = 1
    cfg.data.synthetic.train_size, cfg.data.synthetic.val_size = 400, 30
    return cfg


def run_metrics(
    *,
    process_start: float = 0.0,
    imports: float = 0.0,
    data: float = 0.0,
    build: float = 0.0,
    trace: float = 0.0,
    train: float = 0.0,
    evaluate: float = 0.0,
    checkpoint: float = 0.0,
    tracking: float = 0.0,
    other: float = 0.0,
    ips: float | None = None,
) -> dict[str, float]:
    """A run's final metrics as a worker logs them (``mnv1.timing``)."""
    metrics = {
        "time_process_start_s": process_start,
        "time_import_s": imports,
        "time_data_s": data,
        "time_build_s": build,
        "time_trace_s": trace,
        "time_train_s": train,
        "time_evaluate_s": evaluate,
        "time_checkpoint_s": checkpoint,
        "time_tracking_s": tracking,
        "time_worker_other_s": other,
    }
    if ips is not None:
        metrics["train_images_per_sec"] = ips
    return metrics


def point(shape: str, mult_adds: int, step_s: float, metrics: dict[str, float]) -> ProbePoint:
    """A probe's short run of ``shape``: 2 epochs × 6 steps of 10 images, 30 validation images
    and 1 BatchNorm batch (4 evaluation batches an epoch), exit 0.5 s."""
    return ProbePoint(
        shape=shape,
        mult_adds=mult_adds,
        batch=10,
        epochs=2,
        steps_per_epoch=6,
        val_examples=30,
        bn_batches=1,
        metrics={**metrics, "train_images_per_sec": 10 / step_s},
        exit_s=0.5,
    )


BIG, MID, SMALL = cell(1.0, 224), cell(0.5, 160), cell(0.25, 128)
# BIG's probe run: start-up 1 + 9; data, build, tracking, the rest and its first step 2 + 1 + 3
# + 0.5 + 2; 11 steady steps of 1 s and 1 s more in training; checkpoints 0.5; evaluation 4.
BIG_RUN = run_metrics(
    process_start=1, imports=9, data=2, build=1, tracking=3, other=0.5, trace=2, train=12,
    checkpoint=0.5, evaluate=4,
)  # fmt: skip
# SMALL's: start-up 6; 1 + 0.5 + 2 + 0.5 + 1; 11 steps of 0.2 s and 0.2 s more; 0.3; 2.
SMALL_RUN = run_metrics(
    imports=6, data=1, build=0.5, tracking=2, other=0.5, trace=1, train=2.4, checkpoint=0.3,
    evaluate=2,
)  # fmt: skip
PROBE = Probe(
    host="h",
    key="k",
    measured_at="now",
    points=(
        point(shape_of(BIG), 500, 1.0, BIG_RUN),
        point(shape_of(SMALL), 100, 0.2, SMALL_RUN),
    ),
    mult_adds={shape_of(BIG): 500, shape_of(MID): 200, shape_of(SMALL): 100},
)
BIG_FIXED = 10 + 8.0 + 2 * (0.75 + 4 * 0.5)  # 23.5: see the test of a cell's estimate
SMALL_FIXED = 6 + 5.3 + 2 * (0.25 + 4 * 0.25)  # 13.8


def test_a_probed_run_splits_into_the_parts_the_plan_scales() -> None:
    f = PROBE.points[0].figures
    assert f.startup_s == pytest.approx(1 + 9)  # process start, imports
    # data, build, tracking, the rest, first step, exit, less the steady step the first one is
    assert f.once_s == pytest.approx(2 + 1 + 3 + 0.5 + 2 + 0.5 - 1.0)
    # per epoch: a checkpoint and the training time beyond 11 steady steps: (0.5 + 1) / 2
    assert f.per_epoch_s == pytest.approx(0.75)
    assert f.eval_batch_s == pytest.approx(4 / (2 * 4))  # 2 epochs of 3 + 1 batches
    assert f.step_s == pytest.approx(1.0)  # 10 images at 10 images/s
    # For the probe's own run the parts add up to what it took: its phases and its exit.
    took = sum(BIG_RUN.values()) + 0.5
    assert f.fixed_s(2, 4) + f.per_step_s(2) * 6 == pytest.approx(took)


def test_cells_between_the_probed_ones_are_placed_by_work_per_step() -> None:
    mid = PROBE.at(shape_of(MID), 10)
    # 200 lies a quarter of the way from 100 to 500.
    assert not mid.measured and mid.figures.step_s == pytest.approx(0.2 + 0.8 / 4)
    assert mid.figures.startup_s == pytest.approx(6 + 4 / 4)
    assert mid.figures.once_s == pytest.approx(5.3 + 2.7 / 4)
    big = PROBE.at(shape_of(BIG), 10)
    assert big.measured and big.figures.step_s == 1.0


def test_a_cell_estimate_adds_start_up_once_per_cell_epochs_batches_and_steps() -> None:
    [big] = make_plan([BIG], PROBE).cells
    assert (big.steps, big.images, big.eval_batches, big.source) == (20, 200, 3 + 1, "probe")
    # 10 start-up + 8 once + 2 epochs × (0.75 + 4 batches × 0.5) + 2 epochs × 10 steps × 1.0
    assert big.fixed_s == pytest.approx(BIG_FIXED)
    assert big.seconds == pytest.approx(23.5 + 20)
    plan = make_plan([BIG, SMALL], PROBE)
    assert plan.total_s == pytest.approx(43.5 + (SMALL_FIXED + 20 * 0.2))
    # Three epochs of 50 validation images: 3 × (0.75 + (5 + 1) × 0.5) more than none.
    longer = cell(1.0, 224)
    longer.train.epochs, longer.data.synthetic.val_size = 3, 50
    [three] = make_plan([longer], PROBE).cells
    assert three.fixed_s == pytest.approx(10 + 8 + 3 * (0.75 + 6 * 0.5))
    assert three.per_step_s == pytest.approx(3 * 1.0)


def test_a_warm_launch_pays_the_zygote_start_once_unless_the_zygote_is_up() -> None:
    warm = replace(PROBE, zygote_start_s=7.0)
    cells = [BIG, SMALL]
    assert planning.launch_seconds(cells, warm, zygote_up=False) == 7.0
    # The probe measured just now started the zygote the cells will use: nothing more to pay.
    assert planning.launch_seconds(cells, warm, zygote_up=True) == 0.0
    # Cells that start cold pay their start-up each (in their figures), never a zygote's.
    cold = cell(0.25, 128)
    cold.distribute.warm_workers = False
    assert planning.launch_seconds([BIG, cold], warm, zygote_up=False) == 0.0
    # A probe measured cold (or none at all) knows of no zygote.
    assert planning.launch_seconds(cells, PROBE, zygote_up=False) == 0.0
    assert planning.launch_seconds(cells, None, zygote_up=False) == 0.0
    plan = make_plan(cells, warm, launch_s=7.0)
    per_cells = make_plan(cells, warm).total_s
    assert per_cells is not None and plan.total_s == pytest.approx(per_cells + 7.0)
    assert "warm workers' start (once, at the first cell): 7 s" in format_plan(plan)
    assert "warm workers' start" not in format_plan(make_plan(cells, warm))
    # The budget counts it among the fixed costs, once.
    assert choose_steps(plan, 1000.0).fixed_s == pytest.approx(
        choose_steps(make_plan(cells, warm), 1000.0).fixed_s + 7.0
    )


def test_without_a_probe_or_a_known_split_the_plan_says_it_does_not_know() -> None:
    plan = make_plan([BIG], None)
    assert plan.total_s is None and plan.cells[0].steps == 20
    folder = cell(1.0, 224, steps=None)
    folder.data.source = "folder"
    [unknown] = make_plan([folder], PROBE).cells
    assert unknown.steps is None and unknown.seconds is None
    assert "?" in format_plan(make_plan([folder], PROBE))
    # The synthetic split's size is known from the config: one pass per epoch.
    assert make_plan([cell(1.0, 224, steps=None)], PROBE).cells[0].steps_per_epoch == 40


def test_a_target_chooses_the_largest_budget_that_fits() -> None:
    plan = make_plan([BIG, MID, SMALL], PROBE)
    fixed = sum(c.fixed_s for c in plan.cells if c.fixed_s is not None)
    per_step = 2 * (1.0 + 0.4 + 0.2)  # epochs × seconds per step, over the three cells
    budget = choose_steps(plan, fixed + 47 * per_step + 1)
    assert budget.steps_per_epoch == 45 and budget.fits  # 47 rounded down to a multiple of 5
    budget = choose_steps(plan, fixed + 7 * per_step)
    assert budget.steps_per_epoch == 7 and budget.fits  # small budgets are not rounded
    planned = with_steps(plan, budget)
    assert planned.total_s == pytest.approx(fixed + 7 * per_step)
    assert {c.steps_per_epoch for c in planned.cells} == {7}
    too_short = choose_steps(plan, fixed)
    assert too_short.steps_per_epoch == planning.MIN_STEPS_PER_EPOCH and not too_short.fits
    assert "does NOT fit" in format_plan(with_steps(plan, too_short))


def test_budgets_from_10_steps_are_rounded_to_5_and_5_to_9_are_not() -> None:
    plan = make_plan([BIG, MID, SMALL], PROBE)
    fixed = sum(c.fixed_s for c in plan.cells if c.fixed_s is not None)
    per_step = 2 * (1.0 + 0.4 + 0.2)
    chosen = [choose_steps(plan, fixed + n * per_step).steps_per_epoch for n in (5, 9, 10, 14, 15)]
    assert chosen == [5, 9, 10, 10, 15]
    assert (planning.STEP_QUANTUM, planning.MIN_STEPS_PER_EPOCH) == (5, 5)
    # The README states the same rule.
    readme = " ".join((Path(__file__).parent.parent / "README.md").read_text().split())
    assert "at least 5, and from 10 up rounded down to a multiple of 5" in readme
    assert "5 to 9 stay as they are" in readme


def test_does_not_fit_says_why_and_blames_the_fixed_costs_only_when_they_exceed_the_target() -> (
    None
):
    plan = make_plan([BIG, SMALL], PROBE)
    fixed = BIG_FIXED + SMALL_FIXED  # the cells without steps: 37.3 s
    per_step = 2 * (1.0 + 0.2)
    assert choose_steps(plan, 100).fixed_s == pytest.approx(fixed)
    # Room for 3 steps per epoch, not the 5 of the smallest budget: the fixed costs fit.
    short = choose_steps(plan, fixed + 3 * per_step)
    assert (short.steps_per_epoch, short.fits) == (5, False)
    text = format_plan(with_steps(plan, short))
    assert "which it does NOT fit: the smallest budget, 5 steps per epoch, takes 49 s " in text
    assert "(37 s of it fixed costs)" in text and "fixed costs alone" not in text
    over = choose_steps(plan, fixed - 1)
    text = format_plan(with_steps(plan, over))
    assert "which it does NOT fit: the fixed costs alone (37 s: start-up," in text
    fits = choose_steps(plan, fixed + 6 * per_step)
    assert fits.fits and "which it fits;" in format_plan(with_steps(plan, fits))


def test_a_target_budgets_each_cell_once_whatever_its_seeds() -> None:
    """Three seeds of each cell train at the budget one seed does (three times the cost), so
    seed 0's runs keep the single-seed sweep's budget and so its run keys."""
    single = make_plan([BIG, SMALL], PROBE)
    seeded = []
    for base in (BIG, SMALL):
        for seed in range(3):
            c = cell(base.model.alpha, base.model.resolution)
            c.train.seed = seed
            seeded.append(c)
    plan = make_plan(seeded, PROBE)
    assert len({c.run_key for c in plan.cells}) == 6 and len({c.cell_key for c in plan.cells}) == 2
    one, three = choose_steps(single, 300), choose_steps(plan, 300)
    # (300 - 37.3) / 2.4 = 109.5 steps, rounded down to a multiple of 5
    assert one.steps_per_epoch == three.steps_per_epoch == 105
    assert (one.seeds, three.seeds) == (1, 3)
    assert with_steps(plan, three).total_s == pytest.approx(3 * with_steps(single, one).total_s)
    text = format_plan(with_steps(plan, three))
    assert "for a 5 min 00 s target per seed (3 seeds per cell: about 3 × that in all)" in text


def test_the_plan_text() -> None:
    plan = with_steps(make_plan([BIG, SMALL], PROBE), choose_steps(make_plan([BIG], PROBE), 600))
    text = format_plan(plan)
    assert text.startswith("Plan: 2 cell(s)\n")
    assert re.search(r"mnv1_a1\.0_r224\s+0\.0M\s+2×\d+\s+[\d,]+\s+\d+ min \d\d s\s+probe", text)
    assert "total (cells, one after another): " in text
    assert "chosen from the probe for a 10 min 00 s target" in text
    assert "probe on h (measured now, now): " in text
    assert "figures: 2 from the probe of that shape" in text


def test_durations() -> None:
    assert [duration(s) for s in (0.4, 42, 185, 3720, None)] == [
        "0 s",
        "42 s",
        "3 min 05 s",
        "1 h 02 min",
        "?",
    ]


def test_the_progress_line_format() -> None:
    line = progress_line(5, 16, 250, 542, "mnv1_a0.75_r160", 0.4123)
    assert (
        line == "5/16 done · 4 min 10 s elapsed · ETA 9 min 02 s · mnv1_a0.75_r160 val_top1 41.2%"
    )
    failed = progress_line(1, 4, 3, None, "mnv1_a0.5_r48", None, "FAILED")
    assert failed == "1/4 done · 3 s elapsed · ETA ? · mnv1_a0.5_r48 val_top1 — (FAILED)"
    assert progress_bar(0, 4, 8) == "[░░░░░░░░]"
    assert progress_bar(3, 4, 8) == "[██████░░]"
    assert progress_bar(4, 4, 8) == "[████████]"


def test_the_eta_is_corrected_by_the_cells_already_run_and_reaches_k_of_k() -> None:
    now = [0.0]
    progress = SweepProgress({"a": 10.0, "b": 20.0, "c": 30.0}, total=3, clock=lambda: now[0])
    progress.start()
    assert progress.eta() == pytest.approx(60.0)
    now[0] = 20.0  # cell a took twice its estimate: the rest will too
    line = progress.cell_done("a", "A", "trained", "FINISHED", 0.5)
    assert line == "1/3 done · 20 s elapsed · ETA 1 min 40 s · A val_top1 50.0%"
    now[0] = 20.5  # a skipped cell says nothing about the estimates
    line = progress.cell_done("b", "B", "skipped", "FINISHED", 0.25)
    assert line.startswith("2/3 done · 20 s elapsed · ETA 1 min 00 s · B")
    now[0] = 50.0
    line = progress.cell_done("c", "C", "trained", "FINISHED", None)
    assert line.startswith("3/3 done · 50 s elapsed · ETA 0 s · C val_top1 —")
    assert progress.ratio() == pytest.approx((20.0 + 29.5) / 40.0)


def test_the_first_cell_trained_carries_the_launchs_zygote_start() -> None:
    now = [0.0]
    progress = SweepProgress({"a": 10.0, "b": 10.0}, total=2, clock=lambda: now[0], launch_s=5.0)
    progress.start()
    assert progress.eta() == pytest.approx(25.0)  # both cells, and the zygote's start once
    now[0] = 0.5
    progress.cell_done("a", "A", "skipped", "FINISHED", None)  # a skipped cell starts nothing
    assert progress.eta() == pytest.approx(15.0)
    now[0] = 15.5  # b took its estimate and the start: the estimate was right
    progress.cell_done("b", "B", "trained", "FINISHED", None)
    assert progress.ratio() == pytest.approx(1.0)


def test_cell_plan_is_frozen_data() -> None:
    c = CellPlan("n", "k", 1, 1, 1, 1, 1, 1.0, 1.0)
    assert c.seconds == 2.0 and Plan((c,), None).estimates() == {"k": 2.0}


def test_the_probe_key_follows_speed_not_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnv1.sweep.probe import ENV_PROBE_DIR, cached_probe, probe_dir, probe_key

    base = probe_key([BIG, SMALL])
    budget = [cell(1.0, 224, steps=99), cell(0.25, 128, steps=99)]
    for c in budget:
        c.train.epochs, c.train.target_minutes, c.train.learning_rate = 7, 3.0, 0.5
    assert probe_key(budget) == base  # the budget is what the probe is used to choose
    wider = cell(1.0, 224)
    wider.train.batch_size = 32
    assert probe_key([wider, SMALL]) != base
    assert probe_key([BIG]) != base
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")
    assert probe_key([BIG, SMALL]) != base  # other devices, other speed

    monkeypatch.setenv(ENV_PROBE_DIR, str(tmp_path))
    assert probe_dir() == tmp_path
    assert cached_probe([BIG, SMALL]) is None
    (tmp_path / f"{probe_key([BIG, SMALL])}.json").write_text("{not json")
    assert cached_probe([BIG, SMALL]) is None  # unreadable: measured again, never trusted
