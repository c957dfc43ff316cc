"""``mnv1-bench model`` and the GPU script run end to end at a tiny size (shape, not speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnv1.cli.bench import main


@pytest.mark.slow
def test_gpu_script_runs_on_any_backend(tmp_path: Path) -> None:
    """The GPU script, on the TensorFlow CPU backend here, with a budget that leaves cells out."""
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, "-m", "mnv1.bench.gpu", "--backend", "tensorflow", "--alphas", "0.25"]
    cmd += ["--resolutions", "32", "--batch", "4", "--steps", "2", "--budget-s", "0.001"]
    cmd += ["--out", str(out)]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    # The first configuration always runs; the budget then skips the other three, and says so.
    assert len(report["results"]) == 1 and len(report["skipped"]) == 3
    first = report["results"][0]
    assert (first["precision"], first["xla"]) == ("float32", True)
    assert first["mult_adds"] == 1_088_128 and first["train_ips"] > 0
    assert "Skipped by the time budget: 3 configurations." in done.stdout


def test_model_bench_logged_as_an_mlflow_run_and_printed_as_asked(
    tmp_path: Path, sqlite_uri: str, capsys: pytest.CaptureFixture
) -> None:
    """One tiny benchmark run (each costs seconds of model building and timing) checks both the
    result document, which the run keeps as its artifact, and the logging of any benchmark."""
    from mlflow.tracking import MlflowClient

    assert main(["model", "--tiny", "--log-to", sqlite_uri, "--log-experiment", "bench"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("## model") and "| alpha | resolution |" in out  # markdown as asked
    client = MlflowClient(sqlite_uri)
    experiment = client.get_experiment_by_name("bench")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.tags["mnv1.kind"] == "benchmark" and run.data.tags["mnv1.benchmark"] == "model"
    metrics = run.data.metrics
    assert metrics["a0.25_r32.train_ratio"] == pytest.approx(
        metrics["a0.25_r32.ours_train"] / metrics["a0.25_r32.keras_train"]
    )
    assert run.data.params["backend"] == "tensorflow"
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["benchmark.md"]

    # The artifact is the benchmark's own JSON document.
    local = client.download_artifacts(run.info.run_id, "benchmark.md", str(tmp_path))
    report = json.loads(Path(local).read_text())
    assert report["benchmark"] == "model"
    assert report["meta"]["backend"] == "tensorflow"
    assert report["meta"]["float32 matmul ceiling GFLOP/s"] > 0
    (row,) = report["results"]
    assert (row["alpha"], row["resolution"]) == (0.25, 32)
    runs = row["runs"]
    # A B alternation: both models timed once per repeat, the median reported.
    assert len(runs["ours"]["train_runs"]) == len(runs["keras_ref"]["train_runs"]) == 2
    assert row["train_ratio"] == pytest.approx(row["ours_train"] / row["keras_train"])
    # α=0.25, ρ=32: 6 × mult-adds FLOPs per trained image, from the cost model.
    assert runs["mult_adds"] == 1_088_128
    assert row["train_gflops"] == pytest.approx(row["ours_train"] * 6 * 1_088_128 / 1e9)
