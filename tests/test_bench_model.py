"""``mnv1-bench model`` and the GPU script run end to end at a tiny size (shape, not speed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mnv1.cli.bench import main


def test_gpu_schedule_puts_the_headline_cells_in_bf16_first() -> None:
    from mnv1.bench.gpu import GRID_CELLS, IMPLS, schedule

    order = schedule(list(GRID_CELLS), ["mixed_bfloat16", "float32"], list(IMPLS))
    assert len(order) == 16 * 2 * 4
    first = [(a, r, p) for _, a, r, p in order[:12]]
    assert first == [
        (a, r, "mixed_bfloat16") for a, r in ((1.0, 224), (0.5, 160), (0.25, 128)) for _ in IMPLS
    ]
    assert [impl for impl, *_ in order[:4]] == list(IMPLS)  # every peer of a row together
    assert {p for _, _, _, p in order[12:24]} == {"float32"}


@pytest.mark.slow
def test_gpu_script_times_ours_and_the_peers_on_a_resident_batch(tmp_path: Path) -> None:
    """The GPU script on the TensorFlow CPU backend, with a NumPy stand-in peer where PyTorch
    and timm are not installed; the budget then leaves the other cell out, and says so."""
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, "-m", "mnv1.bench.gpu", "--backend", "tensorflow"]
    cmd += ["--cells", "0.25:32", "0.25:48", "--precisions", "float32"]
    cmd += ["--impls", "ours", "keras_app", "timm_eager", "--peer", "standin=gpu_standin:make"]
    cmd += ["--batch", "4", "--steps", "2", "--repeats", "1", "--warmup", "1", "--jit", "false"]
    cmd += ["--matmul-size", "64", "--budget-s", "0.001", "--out", str(out)]
    tests = str(Path(__file__).parent)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": tests}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    ran = [(r["impl"], r["alpha"], r["resolution"]) for r in report["results"]]
    peers = ["ours", "keras_app", "standin"]
    if "timm_eager" in report["unavailable"]:  # no torch or timm here: said, not dropped
        assert "Unavailable: timm_eager (ModuleNotFoundError" in done.stdout
    else:
        peers.insert(2, "timm_eager")
    # The first configuration always runs, then the budget has run out: one row, the rest
    # listed as skipped.
    assert ran == [("ours", 0.25, 32)]
    assert len(report["skipped"]) == 2 * len(peers) - 1
    row = report["results"][0]
    assert row["mult_adds"] == 1_088_128 and row["train_ips"] > 0 and row["compile_s"] > 0
    assert report["batch"] == 4 and set(report["matmul_tflops"]) == {"float32"}

    # With time for both cells, every implementation times both (the stand-in included).
    cmd[cmd.index("--budget-s") + 1] = "600"
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    ran = [(r["impl"], r["resolution"]) for r in report["results"]]
    assert ran == [(p, r) for r in (32, 48) for p in peers]
    assert "| standin | 0.25 | 48 | float32 |" in done.stdout


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
