"""End to end: the real ``mnv1-train -m experiment=smoke`` against a temporary SQLite store,
checked through MLflow's API. Each test trains a few tiny cells (α ≤ 0.5, ρ ≤ 48, two steps per
epoch), each cell in its own worker process, exactly as a user's sweep does."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import time
from pathlib import Path

import pytest
from mnv1.tracking.schema import PER_EPOCH_METRICS
from sweep_support import Workspace

SMOKE_CELLS = ["mnv1_a0.25_r32", "mnv1_a0.25_r48", "mnv1_a0.5_r32", "mnv1_a0.5_r48"]

# MobileNetV1's body (the paper's Table 1, second-to-last depthwise conv at stride 1):
# (kind, stride, output channels at α = 1).
BODY = (
    [("conv", 2, 32), ("sep", 1, 64), ("sep", 2, 128), ("sep", 1, 128), ("sep", 2, 256)]
    + [("sep", 1, 256), ("sep", 2, 512)]
    + [("sep", 1, 512)] * 5
    + [("sep", 2, 1024), ("sep", 1, 1024)]
)


def paper_costs(alpha: float, resolution: int, classes: int) -> tuple[int, int]:
    """Mult-adds and params in the paper's convention (conv weights and the classifier, no
    bias, no BatchNorm), from the architecture alone: an independent check of mnv1.costs."""
    size, channels, macs, params = resolution, 3, 0, 0
    for kind, stride, width in BODY:
        out = int(width * alpha)
        size = math.ceil(size / stride)  # SAME padding
        weights = 9 * channels * out if kind == "conv" else 9 * channels + channels * out
        macs += weights * size * size
        params += weights
        channels = out
    return macs + channels * classes, params + channels * classes


# The smoke cells on the 10-class synthetic dataset, pinned.
SMOKE_COSTS = {
    "mnv1_a0.25_r32": (834_688, 210_160),
    "mnv1_a0.25_r48": (2_052_928, 210_160),
    "mnv1_a0.5_r32": (3_045_632, 812_768),
    "mnv1_a0.5_r48": (7_546_496, 812_768),
}


def test_reference_counts() -> None:
    assert paper_costs(1.0, 224, 1000) == (568_740_352, 4_209_088)  # the paper's 569M and 4.2M
    assert paper_costs(0.25, 128, 1000) == (13_570_048, 463_600)
    for name, counts in SMOKE_COSTS.items():
        alpha, resolution = float(name.split("_a")[1].split("_r")[0]), int(name.split("_r")[1])
        assert paper_costs(alpha, resolution, 10) == counts


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path)


def skipped_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if ": skipped, run " in line]


PROGRESS = re.compile(
    r"^(\d+)/4 done · [\w ]+ elapsed · ETA [\w ?]+ · mnv1_a[\d.]+_r\d+ val_top1 (\d+\.\d%|—)"
)


def progress_counts(output: str) -> list[int]:
    """The k of every "k/4 done · ..." progress line, in order."""
    return [int(m.group(1)) for m in map(PROGRESS.match, output.splitlines()) if m]


@pytest.mark.slow
def test_smoke_sweep_then_relaunch_adds_no_run(ws: Workspace) -> None:
    done = ws.train("-m", "experiment=smoke")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all cells FINISHED" in done.stdout

    [parent] = ws.parents()
    tags = parent.data.tags
    assert parent.info.status == "FINISHED"
    assert tags["mnv1.kind"] == "sweep" and tags["mnv1.study"] == "smoke"
    assert tags["mnv1.data.name"].startswith("mnv1_synthetic")
    grid = json.loads(ws.text(parent, "grid.json"))
    assert [c["name"] for c in grid["cells"]] == SMOKE_CELLS
    assert all(
        set(c) == {"name", "alpha", "resolution", "variant", "seed", "run_key"}
        for c in grid["cells"]
    )
    assert "model.alpha: 0.25,0.5" in ws.text(parent, "sweep_config.yaml")

    children = ws.children()
    assert sorted(children) == SMOKE_CELLS
    for cell in grid["cells"]:
        run = children[cell["name"]]
        t, m, p = run.data.tags, run.data.metrics, run.data.params
        assert run.info.status == "FINISHED"
        assert t["mlflow.parentRunId"] == parent.info.run_id
        assert t["mnv1.run_key"] == cell["run_key"]
        assert t["mnv1.sweep"] == tags["mnv1.sweep"]
        assert t["mnv1.kind"] == "cell" and t["mnv1.variant"] == "separable"
        assert t["mnv1.replicas"] == "1" and t["mnv1.strategy"]
        assert t["mnv1.resumed_from_epoch"] == "0"
        assert t["mnv1.host"] and t["mnv1.pid"].isdigit()
        for version_tag in ("mnv1.tf_version", "mnv1.keras_version", "mnv1.cuda_version"):
            assert t[version_tag]
        assert len(t["mlflow.source.git.commit"]) == 40
        assert t["mnv1.data.name"] == tags["mnv1.data.name"]
        assert (m["alpha"], m["resolution"]) == (cell["alpha"], cell["resolution"])
        assert (m["mult_adds"], m["params"]) == SMOKE_COSTS[cell["name"]]
        assert m["keras_params"] > m["params"]  # Keras also counts BatchNorm and biases
        assert 0.0 <= m["val_top1"] <= m["val_top5"] <= 1.0
        assert m["train_images_per_sec"] > 0 and m["epoch_seconds"] > 0
        for key in PER_EPOCH_METRICS:
            assert ws.steps(run, key) == [1, 2], key
        assert p["model.alpha"] == str(cell["alpha"]) and p["train.epochs"] == "2"
        assert json.loads(ws.text(run, "config.json"))["model"]["resolution"] == cell["resolution"]
    assert ws.text(parent, "status_matrix.md").count("FINISHED") == 4

    # The sweep ended by writing the paper report, on disk and on the parent run.
    report_files = {"report.md", "report.html", "figure4.png", "figure5.png", "grid.csv"}
    assert report_files <= {p.name for p in (ws.root / "reports" / "smoke").iterdir()}
    logged = {a.path for a in ws.client().list_artifacts(parent.info.run_id, "report")}
    assert {f"report/{name}" for name in report_files} <= logged
    assert "Report: reports/smoke/report.md" in done.stdout

    # The plan came before the first cell, each cell ended with a progress line, up to 4/4, and
    # the parent run keeps the estimate beside the actual time of the same span.
    assert done.stdout.index("Plan: 4 cell(s)") < done.stdout.index("mnv1_a0.25_r32: new run")
    assert "total (cells, one after another): " in done.stdout
    assert progress_counts(done.stdout) == [1, 2, 3, 4]
    assert re.search(
        r"^4/4 done · .+ elapsed · ETA 0 s · mnv1_a0\.5_r48 val_top1 \d+\.\d%$", done.stdout, re.M
    )
    assert parent.data.metrics["plan_estimate_s"] > 0
    assert parent.data.metrics["plan_actual_s"] > 0
    assert parent.data.metrics["time_plan_s"] > 0  # the plan's own time, probe included
    # Every cell trained, so the estimate of the cells trained is the whole plan's.
    trained = parent.data.metrics["plan_estimate_trained_s"]
    assert trained == pytest.approx(parent.data.metrics["plan_estimate_s"])
    assert ws.text(parent, "plan.txt").startswith("Plan: 4 cell(s)")

    before = {r.info.run_id: (r.info.status, r.info.end_time) for r in children.values()}
    again = ws.train("-m", "experiment=smoke")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(skipped_lines(again.stdout)) == 4
    assert progress_counts(again.stdout) == [1, 2, 3, 4]
    assert len(ws.runs()) == 5  # no new run at all
    [same_parent] = ws.parents()
    assert same_parent.info.run_id == parent.info.run_id
    assert same_parent.info.status == "FINISHED"
    assert same_parent.data.tags["mnv1.launches"] == "2"
    after = {r.info.run_id: (r.info.status, r.info.end_time) for r in ws.children().values()}
    assert after == before


@pytest.mark.slow
def test_a_failing_cell_is_isolated_and_a_relaunch_reruns_only_it(ws: Workspace) -> None:
    done = ws.train("-m", "experiment=smoke", env=ws.failing_env("mnv1_a0.5_r48"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 of 4 cells did not finish" in done.stdout
    children = ws.children()
    statuses = {name: run.info.status for name, run in children.items()}
    assert statuses == {
        "mnv1_a0.25_r32": "FINISHED",
        "mnv1_a0.25_r48": "FINISHED",
        "mnv1_a0.5_r32": "FINISHED",
        "mnv1_a0.5_r48": "FAILED",
    }
    failed = children["mnv1_a0.5_r48"]
    traceback = ws.text(failed, "traceback.txt")
    assert traceback.startswith("Traceback (most recent call last)")
    assert "RuntimeError: injected failure in mnv1_a0.5_r48 (MNV1_TEST_FAIL_CELL)" in traceback
    [parent] = ws.parents()
    assert parent.info.status == "FAILED"
    assert "| 0.5 | FAILED" in ws.text(parent, "status_matrix.md")

    finished = {n: r.info.end_time for n, r in children.items() if r.info.status == "FINISHED"}
    again = ws.train("-m", "experiment=smoke")
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(
        line.split(": skipped")[0].split()[-1] for line in skipped_lines(again.stdout)
    ) == [
        "mnv1_a0.25_r32",
        "mnv1_a0.25_r48",
        "mnv1_a0.5_r32",
    ]
    assert f"mnv1_a0.5_r48: resuming run {failed.info.run_id} (was FAILED)" in again.stdout
    assert len(ws.runs()) == 5
    children = ws.children()
    rerun = children["mnv1_a0.5_r48"]
    assert rerun.info.run_id == failed.info.run_id
    assert rerun.info.status == "FINISHED" and rerun.data.tags["mnv1.attempt"] == "2"
    for key in PER_EPOCH_METRICS:
        assert ws.steps(rerun, key) == [1, 2], key
    # The failed attempt's traceback is kept, out of the finished run's top level.
    artifacts = [a.path for a in ws.client().list_artifacts(rerun.info.run_id)]
    assert "traceback.txt" not in artifacts and "attempt1" in artifacts
    assert "injected failure" in ws.text(rerun, "attempt1/traceback.txt")
    assert {n: children[n].info.end_time for n in finished} == finished
    assert all(children[n].data.tags["mnv1.attempt"] == "1" for n in finished)
    [parent] = ws.parents()
    assert parent.info.status == "FINISHED"


@pytest.mark.slow
def test_joblib_runs_two_cells_at_once_on_one_sqlite_store(ws: Workspace) -> None:
    done = ws.train("-m", "experiment=smoke", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert done.returncode == 0, done.stdout + done.stderr
    [parent] = ws.parents()
    assert parent.info.status == "FINISHED"
    children = ws.children()
    assert sorted(children) == SMOKE_CELLS
    for name, run in children.items():
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert (run.data.metrics["mult_adds"], run.data.metrics["params"]) == SMOKE_COSTS[name]
        for key in PER_EPOCH_METRICS:
            assert ws.steps(run, key) == [1, 2], (name, key)
    # Two jobs at once: some pair of cells overlapped in time.
    spans = sorted((r.info.start_time, r.info.end_time) for r in children.values())
    assert any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1))


@pytest.mark.slow
def test_sigkill_mid_run_resumes_in_the_same_run(ws: Workspace) -> None:
    args = (
        "-m",
        "experiment=smoke",
        "model.alpha=0.25",
        "model.resolution=32",
        "train.epochs=3",
        "train.steps_per_epoch=24",
    )
    # Its own process group, so the whole sweep (launcher and worker) dies at once.
    proc = ws.popen(*args, start_new_session=True)
    checkpoints = ws.root / ".mnv1" / "checkpoints"
    deadline = time.monotonic() + 600
    try:
        while not list(checkpoints.glob("*/latest.json")):
            assert proc.poll() is None, "the sweep ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    [killed] = ws.children().values()
    assert killed.info.status == "RUNNING"  # left behind by a dead process
    assert ws.steps(killed, "val_top1") == [1]

    done = ws.train(*args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"resuming run {killed.info.run_id} (was KILLED)" in done.stdout
    [resumed] = ws.children().values()
    tags = resumed.data.tags
    assert resumed.info.run_id == killed.info.run_id
    assert resumed.info.status == "FINISHED"
    assert tags["mnv1.resumed_from_epoch"] == "1"
    assert tags["mnv1.attempt"] == "2"
    assert tags["mnv1.reconciled"].startswith(f"owner pid {killed.data.tags['mnv1.pid']} on ")
    for key in PER_EPOCH_METRICS:
        assert ws.steps(resumed, key) == [1, 2, 3], key
    [parent] = ws.parents()
    assert parent.info.status == "FINISHED" and parent.data.tags["mnv1.launches"] == "2"
    assert len(ws.runs()) == 2


@pytest.mark.slow
def test_a_single_run_without_a_sweep(ws: Workspace) -> None:
    done = ws.train("experiment=smoke", "train.epochs=1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert ws.parents() == []
    [run] = ws.children().values()
    assert run.info.run_name == "mnv1_a0.25_r32" and run.info.status == "FINISHED"
    assert "mlflow.parentRunId" not in run.data.tags and "mnv1.sweep" not in run.data.tags
    assert ws.steps(run, "val_top1") == [1]
    assert not (ws.root / "multirun").exists() and (ws.root / "outputs").is_dir()
    # tracking.rerun=true: a fresh run and a fresh checkpoint, beside the finished one.
    again = ws.train("experiment=smoke", "train.epochs=1", "tracking.rerun=true")
    assert again.returncode == 0, again.stdout + again.stderr
    first, second = sorted(
        ws.client().search_runs([run.info.experiment_id]), key=lambda r: r.info.start_time
    )
    assert first.info.run_id == run.info.run_id and first.info.status == "FINISHED"
    assert second.info.status == "FINISHED"
    assert second.data.tags["mnv1.run_key"] == run.data.tags["mnv1.run_key"]
    assert second.data.tags["mnv1.resumed_from_epoch"] == "0"
    assert ws.steps(second, "val_top1") == [1]
