"""``mnv1-bench sweep``: the wall-time breakdown (pinned on hand-made metrics), reading a sweep's
timings back from a real SQLite store, logging a benchmark run, and one real sweep end to end
(a well-formed result checked, not a speed)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from mnv1.tracking import runs, schema
from mnv1.tracking.benchmarks import REPORT_TEXT, log_benchmark
from mnv1.tracking.queries import sweep_metrics
from mnv1.tracking.store import ensure_experiment

from mnv1.bench.sweep import COMPONENTS, PlanCheck, breakdown, experiment_of, plan_check
from mnv1.cli.bench import build_parser, main
from mnv1.timing import PHASES

PARENT = {
    "time_sweep_start_s": 5.0,
    "time_prepare_s": 3.0,
    "time_sweep_finish_s": 2.5,
    "time_report_s": 2.0,
}


def cell(scale: float) -> dict[str, float]:
    """A cell's metrics: every worker phase 1 s × scale, the worker alive 12 s × scale (so 2 s ×
    scale for its exit), the cell 13 s × scale (1 s × scale of orchestration)."""
    metrics = {f"time_{p}_s": 1.0 * scale for p in PHASES}
    metrics.update({"time_worker_wall_s": 12.0 * scale, "time_cell_s": 13.0 * scale})
    metrics["val_top1"] = 0.5  # other metrics are ignored
    return metrics


def test_breakdown_adds_up_to_the_wall_time() -> None:
    result = breakdown(50.0, PARENT, {"b": cell(2.0), "a": cell(1.0)})
    parts = result.components
    assert list(parts) == [key for key, _ in COMPONENTS]
    for phase in PHASES:
        assert parts[phase] == 3.0  # 1 s + 2 s
    assert parts["process_exit"] == 6.0  # (12 - 10) + (24 - 20)
    assert parts["prepare"] == 3.0 and parts["report"] == 2.0
    # Cells 1 + 2, sweep start less preparing 2, sweep end less the report 0.5.
    assert parts["orchestration"] == 5.5
    assert parts["remainder"] == 50.0 - (10 * 3.0 + 6.0 + 3.0 + 2.0 + 5.5)
    assert sum(parts.values()) == pytest.approx(50.0)
    assert result.pure_training_seconds == 6.0  # trace + train
    assert result.overhead_share == pytest.approx(1 - 6.0 / 50.0)
    assert result.measured_in_workers == 30.0
    assert [c.name for c in result.cells] == ["a", "b"]
    assert result.cells[0].phases["orchestration"] == 1.0
    assert result.cells[1].seconds == 26.0
    assert parts["plan"] == 0.0  # a parent run from before plans were recorded
    planned = breakdown(50.0, {**PARENT, "time_plan_s": 4.0}, {"b": cell(2.0), "a": cell(1.0)})
    assert planned.components["plan"] == 4.0
    assert planned.components["remainder"] == parts["remainder"] - 4.0


def test_breakdown_names_the_run_and_metric_it_misses() -> None:
    metrics = cell(1.0)
    del metrics["time_import_s"]
    with pytest.raises(ValueError, match="cell run a has no metric 'time_import_s'"):
        breakdown(50.0, PARENT, {"a": metrics})
    with pytest.raises(ValueError, match="parent run has no metric 'time_report_s'"):
        breakdown(50.0, {k: v for k, v in PARENT.items() if k != "time_report_s"}, {"a": cell(1)})
    with pytest.raises(ValueError, match="no cell runs"):
        breakdown(50.0, PARENT, {})


def test_the_experiment_is_the_study_unless_overridden() -> None:
    assert experiment_of("smoke", ["model.alpha=0.25"]) == "smoke"
    assert experiment_of("smoke", ["tracking.experiment=mine"]) == "mine"
    assert experiment_of("demo", ["++tracking.experiment=other"]) == "other"


def test_sweep_metrics_reads_the_parent_and_each_cell(sqlite_uri: str) -> None:
    uri = sqlite_uri
    experiment_id = ensure_experiment(uri, "timed")
    parent = runs.create(uri, experiment_id, "sweep", {schema.TAG_KIND: schema.KIND_SWEEP})
    runs.log_metrics(uri, parent, PARENT)
    for name, scale in (("a", 1.0), ("b", 2.0)):
        child = runs.create(
            uri, experiment_id, name, {schema.TAG_KIND: schema.KIND_CELL}, parent_run_id=parent
        )
        runs.log_metrics(uri, child, cell(scale))
        runs.finish(uri, child, runs.FINISHED)
    found = sweep_metrics("timed", uri=uri)
    assert found.parent_run_id == parent
    assert found.parent == PARENT
    assert found.cells == {"a": cell(1.0), "b": cell(2.0)}
    assert found.statuses == {"a": "FINISHED", "b": "FINISHED"}


def test_log_benchmark_records_a_finished_benchmark_run(tmp_path: Path, sqlite_uri: str) -> None:
    uri = sqlite_uri
    run_id = log_benchmark(
        uri, "benchmarks", "sweep", {"study": "smoke"}, {"wall_s": 61.5}, "## report\n"
    )
    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[schema.TAG_KIND] == schema.KIND_BENCHMARK
    assert run.data.tags["mnv1.benchmark"] == "sweep"
    assert run.data.params == {"study": "smoke"}
    assert run.data.metrics == {"wall_s": 61.5}
    local = MlflowClient(uri).download_artifacts(run_id, REPORT_TEXT, str(tmp_path))
    assert Path(local).read_text() == "## report\n"


def test_a_used_workdir_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "mlflow.db").write_text("")
    assert main(["sweep", "--workdir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"--workdir {tmp_path} already holds a tracking store" in err
    assert not (tmp_path / "sweep.log").exists()


def test_parser_passes_overrides_through() -> None:
    args = build_parser().parse_args(["sweep", "--study", "demo", "model.alpha=1.0,0.25"])
    assert (args.study, args.overrides, args.format) == (
        "demo",
        ["model.alpha=1.0,0.25"],
        "markdown",
    )


def test_the_plan_is_checked_against_the_cells_its_launch_trained() -> None:
    parent = {"plan_estimate_s": 120.0, "plan_estimate_trained_s": 90.0, "plan_actual_s": 100.0}
    check = plan_check(parent)
    assert check == PlanCheck(90.0, 100.0) and check.error == pytest.approx(-0.1)
    assert check.line() == "plan 90.0 s, cells 100.0 s, error -10.0%"
    assert plan_check({"plan_estimate_s": 115.0, "plan_actual_s": 100.0}) == PlanCheck(115, 100)
    assert plan_check({"plan_actual_s": 100.0}) is None  # no probe, no estimate
    assert plan_check({"plan_estimate_s": 1.0}) is None  # nothing trained


@pytest.mark.slow
def test_a_real_sweep_breaks_down_into_well_formed_parts(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    log_uri = f"sqlite:///{tmp_path}/bench.db"
    argv = ["sweep", "--format", "json", "--workdir", str(tmp_path / "work"), "--log-to", log_uri]
    # One cell: the breakdown of a sweep is the same sum whatever its size; each cell costs a
    # worker process start.
    assert main([*argv, "model.alpha=0.25", "model.resolution=32"]) == 0
    report = json.loads(capsys.readouterr().out)  # nothing else on stdout
    assert report["benchmark"] == "sweep"
    meta = report["meta"]
    assert meta["study"] == "smoke" and meta["cells"] == 1
    rows = {row["component"]: row for row in report["results"]}
    assert list(rows) == [key for key, _ in COMPONENTS]
    wall = meta["wall seconds"]
    assert sum(row["seconds"] for row in rows.values()) == pytest.approx(wall, abs=0.1)
    assert sum(row["share"] for row in rows.values()) == pytest.approx(1.0)
    # Every part a run must go through took time; the sweep outlasted what its workers measured.
    for key in ("process_start", "import", "prepare", "data", "build", "trace", "train"):
        assert rows[key]["seconds"] > 0, key
    for key in ("evaluate", "checkpoint", "tracking", "process_exit", "orchestration", "report"):
        assert rows[key]["seconds"] > 0, key
    assert rows["remainder"]["seconds"] > 0
    in_workers = sum(c[p] for c in report["cells"] for p in PHASES)
    assert wall > in_workers
    pure = rows["trace"]["seconds"] + rows["train"]["seconds"]
    assert meta["pure training seconds"] == pytest.approx(pure, abs=0.1)
    assert meta["overhead share"] == pytest.approx(1 - pure / wall, abs=0.01)
    assert [c["cell"] for c in report["cells"]] == ["mnv1_a0.25_r32"]
    # The plan the sweep printed, against what its cell took.
    assert re.fullmatch(
        r"plan \d+\.\d s, cells \d+\.\d s, error [+-]\d+\.\d%", meta["plan vs cells"]
    )

    [logged] = MlflowClient(log_uri).search_runs(
        [MlflowClient(log_uri).get_experiment_by_name("benchmarks").experiment_id]
    )
    assert logged.data.tags[schema.TAG_KIND] == schema.KIND_BENCHMARK
    assert logged.data.metrics["cells"] == 1.0
    assert logged.data.metrics["wall_s"] == pytest.approx(wall, abs=0.1)
