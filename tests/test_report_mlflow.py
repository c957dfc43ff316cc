"""The report end to end against a real MLflow SQLite store written through MLflow's own API.

The store holds what a sweep writes (tracking/schema.py): a parent run per sweep with its
``grid.json``, and child runs with the cell metrics. Its values are chosen here, so every table
cell, fidelity number and plotted point has one right answer, computed independently below
(scipy for Spearman's ρ, numpy for the fits).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from mlflow import MlflowClient
from mlflow.entities import Metric
from mnv1.tracking import schema
from mnv1.tracking.queries import read_sweep

from mnv1 import paper
from mnv1.cli.report import main
from mnv1.report.build import ReportResult, build_report
from mnv1.report.figures import FIT_GID, OURS_GID, REFERENCE_FIT_GID, REFERENCE_GID
from mnv1.report.tables import DASH

ALPHAS = (1.0, 0.75, 0.5, 0.25)
RESOLUTIONS = (224, 192, 160, 128)
# Exact paper-convention counts at the 1000-class head (tests/test_costs.py): what a run logs.
MULT_ADDS = {
    (1.0, 224): 568_740_352,
    (1.0, 192): 418_121_728,
    (1.0, 160): 290_675_200,
    (1.0, 128): 186_400_768,
    (0.75, 224): 325_400_448,
    (0.75, 192): 239_273_472,
    (0.75, 160): 166_396_800,
    (0.75, 128): 106_770_432,
    (0.5, 224): 149_497_088,
    (0.5, 192): 109_970_432,
    (0.5, 160): 76_524_800,
    (0.5, 128): 49_160_192,
    (0.25, 224): 41_030_272,
    (0.25, 192): 30_212_608,
    (0.25, 160): 21_059_200,
    (0.25, 128): 13_570_048,
}
PARAMS = {1.0: 4_209_088, 0.75: 2_568_144, 0.5: 1_319_648, 0.25: 463_600}
# Final val_top1 (a fraction, as Keras reports it) of each finished cell of sweep sw1.
# 1.0-224 finished in the earlier sweep sw0 and was skipped by sw1 (same run key).
TOP1 = {
    (1.0, 224): 0.612,
    (1.0, 192): 0.598,
    (1.0, 160): 0.571,
    (1.0, 128): 0.552,
    (0.75, 224): 0.589,
    (0.75, 192): 0.566,
    (0.75, 160): 0.545,
    (0.75, 128): 0.507,
    (0.5, 224): 0.541,
    (0.5, 192): 0.530,
    (0.5, 160): 0.488,
    (0.25, 224): 0.432,
    (0.25, 192): 0.401,
}
RUNNING_CELL = (0.5, 128)
FAILED_CELL = (0.25, 160)
MISSING_CELL = (0.25, 128)


def _name(alpha: float, resolution: int, variant: str = "separable") -> str:
    from mnv1.config import run_name

    return run_name(alpha, resolution, variant)


def _key(alpha: float, resolution: int, variant: str = "separable") -> str:
    return f"key-{variant}-{alpha}-{resolution}"


class Store:
    """Writes runs the way the sweep does, through MLflow's client API."""

    def __init__(self, uri: str, artifacts: Path) -> None:
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self.artifacts = artifacts
        self.clock = 1_700_000_000_000  # start times in ms, strictly increasing

    def tick(self) -> int:
        self.clock += 60_000
        return self.clock

    def experiment(self, name: str) -> str:
        return self.client.create_experiment(name, artifact_location=str(self.artifacts / name))

    def parent(
        self, exp: str, sweep: str, study: str, cells: list[tuple[float, int, str]] | None
    ) -> str:
        tags = {
            schema.TAG_KIND: schema.KIND_SWEEP,
            schema.TAG_SWEEP: sweep,
            schema.TAG_STUDY: study,
        }
        run = self.client.create_run(exp, start_time=self.tick(), tags=tags, run_name=sweep)
        run_id = run.info.run_id
        if cells is not None:
            grid = {
                "cells": [
                    {
                        "name": _name(a, r, v),
                        "alpha": a,
                        "resolution": r,
                        "variant": v,
                        "run_key": _key(a, r, v),
                    }
                    for a, r, v in cells
                ]
            }
            self.client.log_text(run_id, json.dumps(grid), "grid.json")
        return run_id

    def finish(self, run_id: str) -> None:
        self.client.set_terminated(run_id, "FINISHED", end_time=self.tick())

    def cell(
        self,
        exp: str,
        parent_id: str,
        sweep: str,
        alpha: float,
        resolution: int,
        status: str,
        top1: float | None = None,
        variant: str = "separable",
    ) -> str:
        tags = {
            schema.TAG_KIND: schema.KIND_CELL,
            "mlflow.parentRunId": parent_id,
            schema.TAG_RUN_KEY: _key(alpha, resolution, variant),
            schema.TAG_SWEEP: sweep,
            schema.TAG_VARIANT: variant,
        }
        run = self.client.create_run(
            exp, start_time=self.tick(), tags=tags, run_name=_name(alpha, resolution, variant)
        )
        run_id = run.info.run_id
        t = self.clock
        mult_adds = MULT_ADDS.get((alpha, resolution), 1_000_000)
        metrics = [
            Metric(schema.METRIC_ALPHA, alpha, t, 0),
            Metric(schema.METRIC_RESOLUTION, resolution, t, 0),
            Metric(schema.METRIC_MULT_ADDS, mult_adds, t, 0),
            Metric(schema.METRIC_PARAMS, PARAMS.get(alpha, 1_000_000), t, 0),
            Metric(schema.METRIC_KERAS_PARAMS, PARAMS.get(alpha, 1_000_000) + 44_776, t, 0),
            # Epoch 0: a running run has only this, which is not a result.
            Metric(schema.METRIC_VAL_TOP1, 0.05, t, 0),
        ]
        if top1 is not None:
            metrics += [
                Metric(schema.METRIC_VAL_TOP1, top1, t + 1, 1),
                Metric(schema.METRIC_VAL_TOP5, min(1.0, top1 + 0.25), t + 1, 1),
                Metric(schema.METRIC_TRAIN_IPS, 1000.0 * alpha + resolution, t + 1, 0),
                Metric(schema.METRIC_EPOCH_SECONDS, 12.5, t + 1, 0),
            ]
        self.client.log_batch(run_id, metrics=metrics)
        if status != "RUNNING":
            self.client.set_terminated(run_id, status, end_time=self.tick())
        return run_id


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("store")
    db = Store(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")
    ids: dict[str, str] = {"uri": db.uri}

    t16 = db.experiment("t16")
    # The earlier sweep sw0 finished 1.0-224 and was killed during 1.0-192.
    sw0 = db.parent(t16, "sw0", "tradeoff16", [(1.0, 224, "separable"), (1.0, 192, "separable")])
    ids["sw0"] = sw0
    ids["reused"] = db.cell(t16, sw0, "sw0", 1.0, 224, "FINISHED", TOP1[1.0, 224])
    db.cell(t16, sw0, "sw0", 1.0, 192, "KILLED")
    db.finish(sw0)

    grid = [(a, r, "separable") for a in ALPHAS for r in RESOLUTIONS]
    sw1 = db.parent(t16, "sw1", "tradeoff16", grid)
    ids["sw1"] = sw1
    # A failed first try of 0.75-224, then its successful rerun: the report takes the rerun.
    db.cell(t16, sw1, "sw1", 0.75, 224, "FAILED")
    for a in ALPHAS:
        for r in RESOLUTIONS:
            if (a, r) == (1.0, 224) or (a, r) == MISSING_CELL:
                continue  # skipped (finished in sw0) / never started
            if (a, r) == RUNNING_CELL:
                db.cell(t16, sw1, "sw1", a, r, "RUNNING")
            elif (a, r) == FAILED_CELL:
                db.cell(t16, sw1, "sw1", a, r, "FAILED")
            else:
                ids[f"{a}-{r}"] = db.cell(t16, sw1, "sw1", a, r, "FINISHED", TOP1[a, r])
    db.finish(sw1)

    # A Table 4 study whose parent has no grid.json: its cells are what its children say.
    t4 = db.experiment("table4")
    p4 = db.parent(t4, "t4a", "table4", None)
    ids["t4"] = p4
    db.cell(t4, p4, "t4a", 1.0, 224, "FINISHED", 0.300, variant="full_conv")
    db.cell(t4, p4, "t4a", 1.0, 224, "FINISHED", 0.350)
    db.finish(p4)
    return ids


@pytest.fixture(scope="module")
def report(store: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    out = tmp_path_factory.mktemp("report")
    return build_report("t16", out, uri=store["uri"])


def _row(result: ReportResult, key: str, first_column: str) -> int:
    table = result.tables[key]
    return [r[0] for r in table.formatted()].index(first_column)


def test_read_sweep_defaults_to_the_latest_parent(store: dict[str, str]) -> None:
    sweep = read_sweep("t16", uri=store["uri"])
    assert sweep.parent.run_id == store["sw1"]
    assert (sweep.parent.sweep_key, sweep.parent.study) == ("sw1", "tradeoff16")
    assert sweep.parent.grid is not None and len(sweep.parent.grid) == 16
    # 15 children of sw1 (the failed try included) plus the finished run of sw0 that sw1 reused
    # (its run key is in sw1's grid); sw0's killed run is not reused.
    assert len(sweep.runs) == 16
    assert store["reused"] in {r.run_id for r in sweep.runs}
    by_key = read_sweep("t16", "sw0", store["uri"])
    by_id = read_sweep("t16", store["sw0"], store["uri"])
    by_prefix = read_sweep("t16", store["sw0"][:8], store["uri"])
    assert by_key.parent.run_id == by_id.parent.run_id == by_prefix.parent.run_id == store["sw0"]
    with pytest.raises(ValueError, match=r"sweep='sw' is a prefix of several sweeps.*sw1.*sw0"):
        read_sweep("t16", "sw", store["uri"])


def test_paper_tables_exact_cells(report: ReportResult) -> None:
    t6 = report.tables["table6"]
    i = _row(report, "table6", "0.25 MobileNet-224")
    assert t6.cell(i, "Run") == "finished"
    assert t6.cell(i, "Top-1 ours") == "43.2"
    assert t6.cell(i, "Top-1 paper") == "50.6"
    assert t6.cell(i, "Δ paper") == "-7.4"
    assert t6.cell(i, "Top-1 TF-slim 2017_06_14") == "50.6"
    assert t6.cell(i, "M Mult-Adds ours") == "41.03"
    assert t6.cell(i, "M Mult-Adds paper") == "41"
    assert t6.cell(i, "M Params ours") == "0.464"
    assert t6.cell(i, "M Params paper") == "0.5"
    assert t6.cell(i, "Counts") == "pass"

    t7 = report.tables["table7"]
    i = _row(report, "table7", "1.0 MobileNet-160")
    assert t7.cell(i, "Top-1 ours") == "57.1"
    assert t7.cell(i, "M Mult-Adds ours") == "290.68"
    assert t7.cell(i, "Δ M Mult-Adds") == "+0.68"
    assert t7.cell(i, "Counts") == "erratum"
    assert t7.cell(i, "Note") == "paper error: 290 → 291"
    assert any("290.17M" in note for note in t7.notes)  # the erratum's explanation
    # The 1.0-224 cell comes from the earlier sweep's run with the same run key.
    assert t7.cell(_row(report, "table7", "1.0 MobileNet-224"), "Top-1 ours") == "61.2"

    # Table 9's 0.50-160 is in the grid, so its MobileNet row is shown; Tables 4 and 5 are not.
    assert report.tables["table9"].formatted()[0][:3] == ["0.50 MobileNet-160", "finished", "48.8"]
    assert "table8" in report.tables
    assert "table4" not in report.tables and "table5" not in report.tables

    t2 = report.tables["table2"]
    i = _row(report, "table2", "Conv 3x3")
    assert t2.formatted()[i][:6] == ["Conv 3x3", "1.91", "1.19", "0.02", "0.02", "erratum"]


def test_grid_shows_missing_failed_and_running_cells(report: ReportResult) -> None:
    grid = report.tables["grid"]
    missing = _row(report, "grid", _name(*MISSING_CELL))
    assert grid.formatted()[missing][4:] == ["default", "missing", DASH, DASH, "0/1", *[DASH] * 5]
    failed = _row(report, "grid", _name(*FAILED_CELL))
    assert grid.cell(failed, "Status") == "failed"
    assert grid.cell(failed, "Top-1 %") == DASH
    assert grid.cell(failed, "M Mult-Adds") == "21.06"  # costs are logged before training
    running = _row(report, "grid", _name(*RUNNING_CELL))
    assert grid.cell(running, "Status") == "running"
    assert grid.cell(running, "Top-1 %") == DASH  # its epoch-0 value (5.00) is not a result
    rerun = _row(report, "grid", _name(0.75, 224))
    assert grid.cell(rerun, "Status") == "finished"
    assert grid.cell(rerun, "Top-1 %") == "58.90"
    assert grid.cell(rerun, "Top-5 %") == "83.90"
    assert grid.cell(rerun, "Train images/s") == "974.0"
    reused = _row(report, "grid", _name(1.0, 224))
    assert grid.cell(reused, "Run") == report.records[reused].run_id

    matrix = report.tables["grid_top1"]
    assert matrix.formatted()[3] == [
        "0.25",
        "43.20",
        "40.10",
        f"{DASH} (failed)",
        f"{DASH} (missing)",
    ]

    markdown = (report.out_dir / "report.md").read_text()
    assert (
        "| mnv1_a0.25_r128 | 0.25 | 128 | separable | default | missing | — | — | 0/1 | — | — | — "
        "| — | — |" in markdown
    )
    rows = list(csv.reader(io.StringIO((report.out_dir / "grid.csv").read_text())))
    missing_csv = next(r for r in rows if r[0] == "mnv1_a0.25_r128")
    assert missing_csv == [
        "mnv1_a0.25_r128",
        "0.25",
        "128",
        "separable",
        "default",
        "missing",
        "",
        "",
        "0/1",
        *[""] * 5,
    ]


def _finished() -> list[tuple[float, int]]:
    return sorted(TOP1)


def test_fidelity_numbers(report: ReportResult) -> None:
    fid = report.fidelity
    # Tables 2 and 3 (8 checks each), 6 and 7 (8 each), 8 and 9 (2 each): three paper errata.
    assert (fid.count("pass"), fid.count("erratum"), fid.count("FAIL")) == (33, 3, 0)
    excepted = {(c.table, c.item) for c in fid.checks if c.verdict == "erratum"}
    assert excepted == {
        ("Table 2", "Conv 3x3 mult-adds"),
        ("Table 7", "1.0 MobileNet-160 mult-adds"),
        ("Table 9", "0.50 MobileNet-160 mult-adds"),
    }

    cells = _finished()
    ours = [100 * TOP1[c] for c in cells]
    slim = [paper.slim_row(*c).top1_2017 for c in cells]
    assert fid.spearman_n == 13
    expected_rho = scipy.stats.spearmanr(ours, slim).statistic
    assert fid.spearman == pytest.approx(expected_rho, abs=1e-12)

    slope, _ = np.polyfit([math.log10(MULT_ADDS[c]) for c in cells], ours, 1)
    assert fid.fit_ours is not None and fid.fit_ours.slope == pytest.approx(slope, rel=1e-9)
    ref_same, _ = np.polyfit([math.log10(paper.slim_row(*c).macs_m) for c in cells], slim, 1)
    assert fid.fit_reference_same is not None
    assert fid.fit_reference_same.slope == pytest.approx(ref_same, rel=1e-9)
    all16 = paper.SLIM_CHECKPOINTS
    ref_all, _ = np.polyfit([math.log10(s.macs_m) for s in all16], [s.top1_2017 for s in all16], 1)
    assert fid.fit_reference_all is not None
    assert fid.fit_reference_all.slope == pytest.approx(ref_all, rel=1e-9)

    summary = report.tables["fidelity"]
    assert summary.cell(1, "Value") == f"{expected_rho:+.3f}"
    saved = json.loads((report.out_dir / "fidelity.json").read_text())
    assert saved["spearman_n"] == 13
    assert saved["analytic"] == {"pass": 33, "erratum": 3, "fail": 0, "failed_items": []}


def test_figures_plot_every_finished_cell_and_the_reference(report: ReportResult) -> None:
    cells = _finished()
    for name, x_of in (
        ("figure4", lambda c: MULT_ADDS[c] / 1e6),
        ("figure5", lambda c: PARAMS[c[0]] / 1e6),
    ):
        (ax,) = report.figures[name].axes
        ours = [c for c in ax.collections if c.get_gid() == OURS_GID]
        # One series per ρ; 160 and 128 lack the failed, running and missing cells.
        assert [len(c.get_offsets()) for c in ours] == [4, 4, 3, 2]
        points = sorted(tuple(p) for c in ours for p in c.get_offsets())
        expected = sorted((x_of(c), 100 * TOP1[c]) for c in cells)
        np.testing.assert_allclose(np.array(points), np.array(expected), rtol=1e-12)
        (reference,) = [c for c in ax.collections if c.get_gid() == REFERENCE_GID]
        assert len(reference.get_offsets()) == 16
        assert ax.get_xscale() == "log"
    fits = {line.get_gid() for line in report.figures["figure4"].axes[0].lines}
    assert fits == {FIT_GID, REFERENCE_FIT_GID}
    assert len(report.figures["figure5"].axes[0].lines) == 0
    for png in ("figure4.png", "figure5.png"):
        assert (report.out_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_html_is_self_contained(report: ReportResult) -> None:
    html = (report.out_dir / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 2
    assert 'src="figure' not in html
    assert "<td>missing</td>" in html and f"<td>{DASH}</td>" in html
    assert "Experiment <code>t16</code>, study <code>tradeoff16</code>" in html


def test_artifacts_on_the_parent_run(report: ReportResult, store: dict[str, str]) -> None:
    client = MlflowClient(tracking_uri=store["uri"])
    stored = sorted(f.path for f in client.list_artifacts(store["sw1"], "report"))
    assert stored == list(report.artifacts)
    assert stored == sorted(f"report/{p.name}" for p in report.files)
    for name in (
        "report.md",
        "report.html",
        "figure4.png",
        "figure5.png",
        "table6.csv",
        "grid.csv",
    ):
        assert f"report/{name}" in stored
    assert client.get_run(store["sw1"]).info.status == "FINISHED"


def test_cli_status_prints_the_completion_matrix(
    store: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--experiment", "t16", "--tracking-uri", store["uri"], "--status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (
        f"experiment t16, sweep sw1 (parent run {store['sw1']}, FINISHED): 16 cells, "
        "13 finished, 1 running, 1 failed, 0 killed, 1 missing"
    )
    assert lines[2:] == [
        "α \\ ρ       224       192       160       128",
        "1.0    finished  finished  finished  finished",
        "0.75   finished  finished  finished  finished",
        "0.5    finished  finished  finished   running",
        "0.25   finished  finished    failed   missing",
    ]
    assert (
        main(["--experiment", "t16", "--tracking-uri", store["uri"], "--status", "--sweep", "sw0"])
        == 0
    )
    out = capsys.readouterr().out.splitlines()
    assert out[2:] == ["α \\ ρ       224     192", "1.0    finished  killed"]


def test_cli_builds_a_report_for_a_named_sweep(
    store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sw0"
    argv = ["--experiment", "t16", "--sweep", "sw0", "--out", str(out)]
    assert main([*argv, "--tracking-uri", store["uri"], "--no-log-artifacts"]) == 0
    text = capsys.readouterr().out
    assert "report of sweep sw0" in text
    assert "Spearman" in text
    grid = (out / "grid.csv").read_text().splitlines()
    assert len(grid) == 3  # header + the two cells of sw0
    assert "mnv1_a1.0_r192,1.0,192,separable,default,killed" in grid[2]
    client = MlflowClient(tracking_uri=store["uri"])
    assert client.list_artifacts(store["sw0"], "report") == []


def test_cli_errors_name_the_bad_value(
    store: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = ["--tracking-uri", store["uri"]]
    assert main(["--experiment", "nope", "--out", str(tmp_path), *uri]) == 2
    err = capsys.readouterr().err
    assert "experiment='nope'" in err and "t16" in err
    assert main(["--experiment", "t16", "--sweep", "sw9", "--status", *uri]) == 2
    err = capsys.readouterr().err
    assert "sweep='sw9'" in err and "sw1" in err
    with pytest.raises(SystemExit) as exited:
        main(["--experiment", "t16", *uri])
    assert exited.value.code == 2
    assert "--out is required" in capsys.readouterr().err


def test_table4_study_without_grid_json(store: dict[str, str], tmp_path: Path) -> None:
    result = build_report("table4", tmp_path, uri=store["uri"], log_artifacts=False)
    assert [r.name for r in result.records] == ["mnv1_a1.0_r224", "mnv1_a1.0_r224_full_conv"]
    assert result.artifacts == ()
    t4 = result.tables["table4"]
    assert t4.formatted()[0][:3] == ["Conv MobileNet", "finished", "30.0"]
    assert t4.cell(0, "M Mult-Adds ours") == "4867.29"
    assert t4.cell(0, "Counts") == "erratum"
    assert t4.cell(1, "Top-1 ours") == "35.0"
    assert "table5" not in result.tables and "table9" not in result.tables
    t6 = result.tables["table6"]
    assert [t6.cell(i, "Run") for i in range(4)] == ["finished", "missing", "missing", "missing"]
    assert t6.cell(1, "Top-1 ours") == DASH
    assert t6.cell(1, "M Mult-Adds ours") == "325.40"  # analytic: needs no run
    # One finished separable cell: no rank correlation, no slope, and no crash.
    assert result.fidelity.spearman is None and result.fidelity.fit_ours is None
    assert result.tables["fidelity"].cell(1, "Value") == DASH


def test_a_relaunched_sweep_counts_runs_finished_after_its_first_end(tmp_path: Path) -> None:
    db = Store(f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts")
    exp = db.experiment("relaunch")
    cells = [(1.0, 224, "separable"), (0.5, 224, "separable")]
    first = db.parent(exp, "r1", "demo", cells)
    db.cell(exp, first, "r1", 1.0, 224, "FINISHED", 0.6)
    db.finish(first)
    # Another sweep of the same study finishes 0.5-224 afterwards ...
    other = db.parent(exp, "r2", "demo", cells[1:])
    db.cell(exp, other, "r2", 0.5, 224, "FINISHED", 0.5)
    db.finish(other)
    assert [r.status for r in build_report("relaunch", tmp_path / "a", "r1", db.uri).records] == [
        "finished",
        "missing",
    ]
    # ... then r1 is relaunched (its parent reopened, RUNNING again) and skips that cell.
    db.client.update_run(first, status="RUNNING")
    result = build_report("relaunch", tmp_path / "b", "r1", db.uri, log_artifacts=False)
    assert [r.status for r in result.records] == ["finished", "finished"]
    assert result.tables["grid"].cell(1, "Top-1 %") == "50.00"


def test_cli_compare_two_cells_of_one_seed(
    store: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    uri = ["--tracking-uri", store["uri"]]
    argv = ["--experiment", "t16", *uri, "--compare", "mnv1_a1.0_r224", "mnv1_a0.25_r224"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "A: cell mnv1_a1.0_r224: 61.20% (1 run)" in out
    assert "difference A - B in val_top1: +18.00 pp, 95% interval" in out
    # One seed per cell: the noise estimate is the residual spread around the log-linear fit.
    assert "residual spread around the log-linear fit" in out
    assert main(["--experiment", "t16", *uri, "--compare", "mnv1_a0.25_r128", "x"]) == 2
    assert "'mnv1_a0.25_r128' has no finished run (status missing)" in capsys.readouterr().err
