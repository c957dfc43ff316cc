"""The report's parts on values built by hand: statistics, checks, tables, records, the layout."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from mnv1.tracking.queries import CellRun, GridCell, SweepParent, SweepRuns

from mnv1.report.build import assemble
from mnv1.report.fidelity import (
    ERRATUM,
    FAIL,
    PASS,
    check_printed,
    check_release,
    loglinear_fit,
    rounds_to,
    spearman,
)
from mnv1.report.figures import OURS_GID, REFERENCE_GID
from mnv1.report.paper_tables import tables_to_show
from mnv1.report.records import CellRecord, cell_records
from mnv1.report.tables import DASH, Column, Table


def test_spearman_matches_scipy_with_ties() -> None:
    xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    ys = [2.0, 7.0, 1.0, 8.0, 2.0, 8.0, 1.0, 8.0]
    assert spearman(xs, ys) == pytest.approx(scipy.stats.spearmanr(xs, ys).statistic, abs=1e-12)
    assert spearman([1.0, 2.0, 3.0], [30.0, 20.0, 10.0]) == pytest.approx(-1.0)


def test_spearman_undefined_cases() -> None:
    assert spearman([1.0], [2.0]) is None
    assert spearman([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]) is None
    with pytest.raises(ValueError, match="2 x values and 3 y values"):
        spearman([1.0, 2.0], [1.0, 2.0, 3.0])


def test_loglinear_fit_matches_numpy() -> None:
    xs = [569.0, 418.0, 291.0, 186.0, 41.0]
    ys = [70.7, 69.3, 67.2, 64.1, 50.6]
    fit = loglinear_fit(xs, ys)
    slope, intercept = np.polyfit(np.log10(xs), ys, 1)
    assert fit is not None and fit.n == 5
    assert (fit.slope, fit.intercept) == pytest.approx((slope, intercept), rel=1e-12)
    assert fit(100.0) == pytest.approx(intercept + 2 * slope)
    assert loglinear_fit([10.0, 10.0], [1.0, 2.0]) is None
    with pytest.raises(ValueError, match="positive x"):
        loglinear_fit([0.0, 1.0], [1.0, 2.0])


def test_rounding_is_half_up_at_the_printed_precision() -> None:
    assert rounds_to(0.45, 0.5, 1)  # float rounding (banker's, binary) would give 0.4
    assert rounds_to(568.740352, 569.0, 0)
    assert not rounds_to(290.6752, 290.0, 0)


def test_check_printed_pass_erratum_fail() -> None:
    ok = check_printed("Table 6", "1.0 MobileNet-224 mult-adds", 568.740352, 569.0)
    assert (ok.verdict, ok.ours_rounded, ok.erratum) == (PASS, "569", None)
    excepted = check_printed("Table 7", "1.0 MobileNet-160 mult-adds", 290.6752, 290.0)
    assert excepted.verdict == ERRATUM
    assert excepted.erratum is not None and excepted.erratum.correct == "291"
    # An erratum excuses the printed value only when ours reads the correct one.
    wrong = check_printed("Table 7", "1.0 MobileNet-160 mult-adds", 300.0, 290.0)
    assert wrong.verdict == FAIL
    assert check_printed("Table 6", "1.0 MobileNet-224 params", 4.3, 4.2).verdict == FAIL
    share = check_printed("Table 2", "Conv 3x3 mult-adds", 1.9056, 1.19)
    assert (share.verdict, share.decimals) == (ERRATUM, 2)


def test_release_is_validated() -> None:
    assert check_release("2018") == "2018"
    with pytest.raises(ValueError, match=r"slim_release='2019'.*\['2017', '2018'\]"):
        check_release("2019")


def test_table_renders_missing_values_and_escapes() -> None:
    table = Table("t", "T", (Column("Name"), Column("Top-1", ".1f"), Column("n", "d")))
    table.add("a|b", 70.64, 3)
    table.add("c", None, None)
    assert table.to_markdown() == (
        "| Name | Top-1 | n |\n|---|---:|---:|\n| a\\|b | 70.6 | 3 |\n| c | — | — |\n"
    )
    assert table.to_csv() == "Name,Top-1,n\na|b,70.64,3\nc,,\n"
    assert table.to_text() == "Name  Top-1  n\na|b    70.6  3\nc         —  —\n"
    assert table.cell(1, "Top-1") == DASH
    with pytest.raises(ValueError, match="3 columns, got a row of 2"):
        table.add("d", 1.0)


def _run(
    run_id: str,
    name: str,
    status: str,
    start: int,
    metrics: dict[str, float],
    parent: str = "p",
    run_key: str | None = None,
) -> CellRun:
    return CellRun(
        run_id=run_id,
        run_name=name,
        status=status,
        start_time=start,
        end_time=None,
        parent_run_id=parent,
        run_key=run_key,
        sweep_key="s",
        variant="separable",
        metrics=metrics,
    )


def _sweep(grid: tuple[GridCell, ...] | None, runs: list[CellRun]) -> SweepRuns:
    parent = SweepParent("p", "0", "s", "demo", "FINISHED", 0, None, grid)
    return SweepRuns("demo", "sqlite:///x.db", parent, tuple(runs))


def test_records_pick_the_best_run_per_cell() -> None:
    grid = (
        GridCell("mnv1_a0.5_r64", 0.5, 64, "separable", "k1"),
        GridCell("mnv1_a0.25_r64", 0.25, 64, "separable", "k2"),
        GridCell("mnv1_a0.25_r32", 0.25, 32, "separable", None),
        GridCell("mnv1_a0.5_r32", 0.5, 32, "separable", "k4"),
    )
    coords = {"alpha": 0.5, "resolution": 64}
    runs = [
        # A finished run beats a newer failed one.
        _run("a", "mnv1_a0.5_r64", "FINISHED", 1, {**coords, "val_top1": 0.5}, run_key="k1"),
        _run("b", "mnv1_a0.5_r64", "FAILED", 2, {**coords, "val_top1": 0.1}, run_key="k1"),
        # Another config's run at the same coordinates does not answer k2.
        _run("c", "mnv1_a0.25_r64", "FINISHED", 3, {"alpha": 0.25, "resolution": 64}, "p", "zz"),
        # A run that failed before logging anything is found by its name.
        _run("d", "mnv1_a0.25_r32", "SCHEDULED", 4, {}),
    ]
    records = cell_records(_sweep(grid, runs))
    assert [(r.status, r.run_id) for r in records] == [
        ("finished", "a"),
        ("missing", None),
        ("running", "d"),
        ("missing", None),
    ]
    assert records[0].top1 == pytest.approx(50.0)


def test_records_without_grid_come_from_the_children() -> None:
    runs = [
        _run("a", "x", "FINISHED", 1, {"alpha": 0.25, "resolution": 32}),
        _run("b", "y", "KILLED", 2, {"alpha": 0.5, "resolution": 32}),
        _run("c", "z", "FINISHED", 3, {"alpha": 1.0, "resolution": 32}, parent="other"),
    ]
    records = cell_records(_sweep(None, runs))
    assert [(r.name, r.status) for r in records] == [
        ("mnv1_a0.5_r32", "killed"),
        ("mnv1_a0.25_r32", "finished"),
    ]


def _cells(*cells: tuple[float, int, str]) -> list[CellRecord]:
    return [CellRecord(f"c{i}", a, r, v, "missing") for i, (a, r, v) in enumerate(cells)]


def test_tables_shown_follow_the_studies_in_the_grid() -> None:
    full = [(a, r, "separable") for a in (1.0, 0.75, 0.5, 0.25) for r in (224, 192, 160, 128)]
    assert tables_to_show(_cells(*full)) == ["Table 6", "Table 7", "Table 8", "Table 9"]
    table4 = _cells((1.0, 224, "full_conv"), (1.0, 224, "separable"))
    assert tables_to_show(table4) == ["Table 4", "Table 6", "Table 7", "Table 8"]
    table5 = _cells((1.0, 224, "shallow"), (0.75, 224, "separable"))
    assert tables_to_show(table5) == ["Table 5", "Table 6", "Table 7"]
    assert tables_to_show(_cells((0.5, 64, "separable"))) == ["Table 6", "Table 7"]


def test_a_sweep_with_no_finished_cell_still_reports(tmp_path: Path) -> None:
    grid = (GridCell("mnv1_a0.25_r32", 0.25, 32), GridCell("mnv1_a0.5_r32", 0.5, 32))
    runs = [_run("a", "mnv1_a0.25_r32", "FAILED", 1, {"alpha": 0.25, "resolution": 32})]
    result = assemble(_sweep(grid, runs), tmp_path / "out")
    assert [r.status for r in result.records] == ["failed", "missing"]
    ax = result.figures["figure4"].axes[0]
    assert [c for c in ax.collections if c.get_gid() == OURS_GID] == []
    (reference,) = [c for c in ax.collections if c.get_gid() == REFERENCE_GID]
    assert len(reference.get_offsets()) == 16
    assert result.fidelity.spearman is None and result.fidelity.spearman_n == 0
    assert result.fidelity.fit_ours is None
    assert result.fidelity.fit_reference_all is not None
    assert math.isfinite(result.fidelity.fit_reference_all.slope)
    assert result.tables["grid_top1"].formatted() == [
        ["0.5", "— (missing)"],
        ["0.25", "— (failed)"],
    ]
    assert {p.name for p in result.files} >= {"report.md", "report.html", "figure4.png"}


def test_a_child_of_the_sweep_beats_another_sweeps_finished_run() -> None:
    grid = (
        GridCell("mnv1_a0.5_r32", 0.5, 32, "separable", "k1"),
        GridCell("mnv1_a0.25_r32", 0.25, 32, "separable", "k2"),
    )
    runs = [
        # k1: this sweep trained it again (tracking.rerun) and that run failed: it is the answer.
        _run("old1", "mnv1_a0.5_r32", "FINISHED", 1, {}, parent="earlier", run_key="k1"),
        _run("new1", "mnv1_a0.5_r32", "FAILED", 2, {}, run_key="k1"),
        # k2: this sweep skipped it, another sweep had finished it: that run is the answer.
        _run("old2", "mnv1_a0.25_r32", "FINISHED", 1, {}, parent="earlier", run_key="k2"),
        _run("dead", "mnv1_a0.25_r32", "KILLED", 3, {}, parent="earlier", run_key="k2"),
    ]
    records = cell_records(_sweep(grid, runs))
    assert [(r.status, r.run_id) for r in records] == [("failed", "new1"), ("finished", "old2")]


def test_the_report_states_the_budget_every_cell_trained_on() -> None:
    from dataclasses import replace

    from mnv1.report.budget import budget_text

    chosen = {"mnv1.steps_per_epoch": "25", "mnv1.total_steps": "75", "mnv1.target_minutes": "12"}
    a = replace(_run("a", "mnv1_a1.0_r224", "FINISHED", 0, {}), tags=chosen)
    b = replace(_run("b", "mnv1_a0.25_r128", "FINISHED", 0, {}), tags=chosen)
    assert budget_text([a, b]) == (
        "Training budget of every cell: 25 steps per epoch (75 in all), chosen by the plan for a "
        "12-minute target (train.target_minutes)."
    )
    pinned = replace(b, tags={"mnv1.steps_per_epoch": "5", "mnv1.total_steps": "15"})
    assert budget_text([a, pinned]) == (
        "Training budgets differ between cells: 5 steps per epoch (15 in all); 25 steps per "
        "epoch (75 in all), chosen by the plan for a 12-minute target (train.target_minutes)."
    )
    assert budget_text([replace(a, tags={})]) is None
