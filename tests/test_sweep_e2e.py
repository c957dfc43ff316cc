"""End to end: the real ``mnv1-train -m experiment=smoke`` against a temporary SQLite store,
checked through MLflow's API. Each sweep trains a few tiny cells (α ≤ 0.5, ρ ≤ 48, two steps per
epoch), each cell in its own worker process, exactly as a user's sweep does.

Starting processes is what costs here, so the session's one smoke sweep (``smoke`` in
tests/conftest.py, launched three times: with a failing cell on the joblib launcher, relaunched,
relaunched again; tests/smoke_support.py) serves every test that only reads what a sweep leaves
behind; the tests that kill a sweep and the single run have their own workspace."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import time

import pytest
from mlflow.entities import Run
from mnv1.tracking.schema import PER_EPOCH_METRICS
from smoke_support import FAILING_CELL, SMOKE_CELLS, SmokeSweep
from sweep_support import Workspace

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


def skipped_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if ": skipped, run " in line]


PROGRESS = re.compile(
    r"^(\d+)/4 done · [\w ]+ elapsed · ETA [\w ?]+ · mnv1_a[\d.]+_r\d+ val_top1 (\d+\.\d%|—)"
)


def progress_counts(output: str) -> list[int]:
    """The k of every "k/4 done · ..." progress line, in order."""
    return [int(m.group(1)) for m in map(PROGRESS.match, output.splitlines()) if m]


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first test to use the shared sweep also pays for it
def test_one_launch_composes_the_master_once_and_each_cell_once(smoke: SmokeSweep) -> None:
    # The sweeper composes and validates the grid once and hands the launcher those configs:
    # no process (the launching one, joblib's workers) composes a cell a second time.
    for launch in (smoke.failing, smoke.fixed, smoke.again):
        modes = [line.split(" ", 1)[0] for line in launch.compositions]
        assert modes.count("MULTIRUN") == 1 and modes.count("RUN") == 4
        assert len(launch.compositions) == 5
        cells = {
            tuple(sorted(a for a in line.split() if a.startswith("model.")))
            for line in launch.compositions
            if line.startswith("RUN ")
        }
        assert cells == {
            (f"model.alpha={alpha}", f"model.resolution={resolution}")
            for alpha in (0.25, 0.5)
            for resolution in (32, 48)
        }


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_each_launch_writes_its_jobs_into_one_sweep_directory(smoke: SmokeSweep) -> None:
    # hydra.sweep.dir holds ``${now:...}``: resolved once per launch (the master's resolver
    # cache, copied into each job's config as Hydra's own loader does). Resolved again in each
    # job, the jobs of one launch were spread over folders of their own.
    sweeps = sorted((smoke.ws.root / "multirun" / "smoke").iterdir())
    assert len(sweeps) == 3, sweeps
    for sweep in sweeps:
        assert sorted(p.parent.name for p in sweep.glob("*/mnv1.log")) == [
            "0_mnv1_a0.25_r32",
            "1_mnv1_a0.25_r48",
            "2_mnv1_a0.5_r32",
            "3_mnv1_a0.5_r48",
        ], sweep


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_failing_cell_is_isolated_while_joblib_runs_two_cells_at_once(
    smoke: SmokeSweep,
) -> None:
    done, children = smoke.failing.done, smoke.failing.children
    assert done.returncode == 1, done.stdout
    assert "1 of 4 cells did not finish" in done.stdout
    assert {name: run.info.status for name, run in children.items()} == {
        "mnv1_a0.25_r32": "FINISHED",
        "mnv1_a0.25_r48": "FINISHED",
        "mnv1_a0.5_r32": "FINISHED",
        FAILING_CELL: "FAILED",
    }
    assert smoke.failed_traceback.startswith("Traceback (most recent call last)")
    assert (
        f"RuntimeError: injected failure in {FAILING_CELL} (MNV1_TEST_FAIL_CELL)"
        in smoke.failed_traceback
    )
    assert smoke.failing.parent.info.status == "FAILED"
    assert "| 0.5 | FAILED" in smoke.failed_matrix
    # Every cell under the one parent, on one SQLite store; two jobs at once: some pair of
    # cells overlapped in time.
    for run in children.values():
        assert run.data.tags["mlflow.parentRunId"] == smoke.failing.parent.info.run_id
    spans = sorted((r.info.start_time, r.info.end_time) for r in children.values())
    assert any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1))


@pytest.mark.slow
def test_a_relaunch_reruns_only_the_failed_cell_in_its_own_run(smoke: SmokeSweep) -> None:
    ws, before, done = smoke.ws, smoke.failing.children, smoke.fixed.done
    assert done.returncode == 0, done.stdout
    assert sorted(
        line.split(": skipped")[0].split()[-1] for line in skipped_lines(done.stdout)
    ) == [
        "mnv1_a0.25_r32",
        "mnv1_a0.25_r48",
        "mnv1_a0.5_r32",
    ]
    failed = before[FAILING_CELL]
    assert f"{FAILING_CELL}: resuming run {failed.info.run_id} (was FAILED)" in done.stdout
    assert smoke.fixed.run_count == 5
    children = smoke.fixed.children
    rerun = children[FAILING_CELL]
    assert rerun.info.run_id == failed.info.run_id
    assert rerun.info.status == "FINISHED" and rerun.data.tags["mnv1.attempt"] == "2"
    for key in PER_EPOCH_METRICS:
        assert ws.steps(rerun, key) == [1, 2], key
    # The failed attempt's traceback is kept, out of the finished run's top level.
    artifacts = [a.path for a in ws.client().list_artifacts(rerun.info.run_id)]
    assert "traceback.txt" not in artifacts and "attempt1" in artifacts
    assert "injected failure" in ws.text(rerun, "attempt1/traceback.txt")
    finished = [name for name in children if name != FAILING_CELL]
    for name in finished:
        assert children[name].info.end_time == before[name].info.end_time
        assert children[name].data.tags["mnv1.attempt"] == "1"
    assert smoke.fixed.parent.info.run_id == smoke.failing.parent.info.run_id
    assert smoke.fixed.parent.info.status == "FINISHED"
    assert "all cells FINISHED" in done.stdout


@pytest.mark.slow
def test_the_plan_comes_first_and_progress_reaches_k_of_k(smoke: SmokeSweep) -> None:
    # The plan came before the first cell, each cell ended with a progress line, up to 4/4, and
    # the parent run keeps the estimate beside the actual time of the same span.
    ws, done, parent = smoke.ws, smoke.fixed.done, smoke.fixed.parent
    assert done.stdout.index("Plan: 4 cell(s)") < done.stdout.index("mnv1_a0.25_r32: skipped")
    assert "total (cells, one after another): " in done.stdout
    assert progress_counts(done.stdout) == [1, 2, 3, 4]
    assert re.search(r"^4/4 done · .+ elapsed · ETA 0 s · ", done.stdout, re.M)
    assert progress_counts(smoke.again.done.stdout) == [1, 2, 3, 4]
    assert parent.data.metrics["plan_estimate_s"] > 0
    assert parent.data.metrics["plan_actual_s"] > 0
    assert parent.data.metrics["time_plan_s"] > 0  # the plan's own time, probe included
    assert ws.text(parent, "plan.txt").startswith("Plan: 4 cell(s)")
    # The first launch stood on the probe (its two shapes, the other two between them); the
    # relaunch learned from the three cells the first finished on this host, and the failed
    # cell's shape is the probed costliest one (mnv1.sweep.learned).
    assert smoke.failing.parent.data.tags["mnv1.plan.sources"] == "probe 2, model 2"
    assert parent.data.tags["mnv1.plan.sources"] == "finished 3, probe 1"
    assert "figures: 3 cell(s) from the same cell finished on this host" in done.stdout


@pytest.mark.slow
def test_a_parallel_launch_prints_no_progress_and_records_its_actual(smoke: SmokeSweep) -> None:
    # The first launch ran its cells on joblib, in other processes: the plan is printed, but
    # no cell prints a progress line here, and the parent still gets the cells' actual span
    # beside the estimate of the cells it was to train (all four: nothing had finished before).
    done, metrics = smoke.failing.done, smoke.failing.parent.data.metrics
    assert "Plan: 4 cell(s)" in done.stdout
    assert progress_counts(done.stdout) == [] and " done · " not in done.stdout
    assert metrics["plan_actual_s"] > 0
    assert metrics["plan_estimate_trained_s"] == pytest.approx(metrics["plan_estimate_s"])


@pytest.mark.slow
def test_every_run_of_the_sweep_carries_the_schema(smoke: SmokeSweep) -> None:
    ws, parent = smoke.ws, smoke.fixed.parent
    tags = parent.data.tags
    assert tags["mnv1.kind"] == "sweep" and tags["mnv1.study"] == "smoke"
    assert tags["mnv1.data.name"].startswith("mnv1_synthetic")
    grid = json.loads(ws.text(parent, "grid.json"))
    assert [c["name"] for c in grid["cells"]] == SMOKE_CELLS
    assert all(
        set(c) == {"name", "alpha", "resolution", "variant", "seed", "run_key"}
        for c in grid["cells"]
    )
    assert "model.alpha: 0.25,0.5" in ws.text(parent, "sweep_config.yaml")

    children = smoke.fixed.children
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


@pytest.mark.slow
def test_the_sweep_ends_with_its_status_matrix_and_report(smoke: SmokeSweep) -> None:
    ws, parent, done = smoke.ws, smoke.fixed.parent, smoke.fixed.done
    assert ws.text(parent, "status_matrix.md").count("FINISHED") == 4
    # The sweep ended by writing the paper report, on disk and on the parent run.
    report_files = {"report.md", "report.html", "figure4.png", "figure5.png", "grid.csv"}
    assert report_files <= {p.name for p in (ws.root / "reports" / "smoke").iterdir()}
    logged = {a.path for a in ws.client().list_artifacts(parent.info.run_id, "report")}
    assert {f"report/{name}" for name in report_files} <= logged
    assert "Report: reports/smoke/report.md" in done.stdout


@pytest.mark.slow
def test_relaunching_a_finished_sweep_adds_no_run(smoke: SmokeSweep) -> None:
    done = smoke.again.done
    assert done.returncode == 0, done.stdout
    assert len(skipped_lines(done.stdout)) == 4
    assert smoke.again.run_count == 5  # no new run at all
    parent = smoke.again.parent
    assert parent.info.run_id == smoke.fixed.parent.info.run_id
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mnv1.launches"] == "3"

    def ends(children: dict[str, Run]) -> dict[str, tuple[str, int | None]]:
        return {r.info.run_id: (r.info.status, r.info.end_time) for r in children.values()}

    assert ends(smoke.again.children) == ends(smoke.fixed.children)


# The smoke study's data (experiments/smoke.yaml): the embedded synthetic set as TFDS names it.
SMOKE_DATA = "mnv1_synthetic/s0_tr64_va32_c10_px64"


@pytest.mark.slow
def test_each_cell_logs_its_datasets_system_metrics_and_model(smoke: SmokeSweep) -> None:
    from mnv1.tracking.datasets import run_inputs
    from mnv1.tracking.models import logged_model_id, read_logged_model

    ws = smoke.ws
    for name, run in ws.children().items():
        run_id = run.info.run_id
        found = run_inputs(ws.uri, run_id)
        assert sorted(found) == ["training", "validation"], name
        location = str(ws.data_dir / SMOKE_DATA / "1.0.0")
        for context, split, examples in (
            ("training", "train", 64),
            ("validation", "validation", 32),
        ):
            item = found[context]
            assert item["name"] == f"{SMOKE_DATA} 1.0.0 {split}"
            assert item["source_type"] == "tfds"
            assert item["source"] == {
                "tfds_name": SMOKE_DATA,
                "version": "1.0.0",
                "split": split,
                "data_path": location,
            }
            assert item["profile"] == {"num_examples": examples, "split": split, "version": "1.0.0"}
            assert len(item["digest"]) == 16
        # Every cell read the same prepared data: one digest per split across the sweep.
        assert found["training"]["digest"] != found["validation"]["digest"]

        system = {k for k in run.data.metrics if k.startswith("system/")}
        assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= (
            system
        ), (name, sorted(run.data.metrics))

        model_id = logged_model_id(ws.uri, run_id)
        assert model_id is not None and run.data.tags["mnv1.model_id"] == model_id
        model = read_logged_model(ws.uri, model_id)
        assert model.source_run_id == run_id and model.name == "model"
        assert model.has_input_example
        resolution = int(name.split("_r")[1])
        assert model.signature is not None
        [inputs] = json.loads(model.signature["inputs"])
        [outputs] = json.loads(model.signature["outputs"])
        assert inputs["tensor-spec"] == {
            "dtype": "float32",
            "shape": [-1, resolution, resolution, 3],
        }
        assert outputs["tensor-spec"] == {"dtype": "float32", "shape": [-1, 10]}
    digests = {
        run_inputs(ws.uri, r.info.run_id)["training"]["digest"] for r in ws.children().values()
    }
    assert len(digests) == 1


def _report(ws: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    from sweep_support import SCRIPT

    command = [str(SCRIPT.with_name("mnv1-report")), "--experiment", "smoke", *args]
    return subprocess.run(
        command, cwd=ws.root, env=ws.env(), capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_register_picks_the_best_cell_under_the_budget_and_refuses_what_nothing_fits(
    smoke: SmokeSweep,
) -> None:
    ws = smoke.ws
    children = ws.children()
    budget = 3_100_000  # a0.25_r32, a0.25_r48 and a0.5_r32 fit (SMOKE_COSTS); a0.5_r48 does not
    fitting = [n for n in SMOKE_CELLS if SMOKE_COSTS[n][0] <= budget]
    assert fitting == ["mnv1_a0.25_r32", "mnv1_a0.25_r48", "mnv1_a0.5_r32"]
    best = sorted(
        fitting, key=lambda n: (-children[n].data.metrics["val_top1"], SMOKE_COSTS[n][0])
    )[0]

    done = _report(ws, "--register", "smoke-net", "--max-mult-adds", str(budget))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"registered {best} as version 1 of 'smoke-net'" in done.stdout
    assert "within --max-mult-adds 3,100,000" in done.stdout
    assert "of the 3 of 4 finished cells" in done.stdout

    client = ws.client()
    version = client.get_model_version_by_alias("smoke-net", "champion")
    winner = children[best]
    assert str(version.version) == "1" and version.run_id == winner.info.run_id
    model_id = winner.data.tags["mnv1.model_id"]
    assert version.source == client.get_logged_model(model_id).artifact_location
    alpha, resolution = best.split("_a")[1].split("_r")
    assert version.tags == {
        "alpha": alpha,
        "resolution": resolution,
        "mult_adds": str(SMOKE_COSTS[best][0]),
        "val_top1": f"{winner.data.metrics['val_top1']:.6g}",
        "budget": "--max-mult-adds 3,100,000",
        "sweep": smoke.again.parent.data.tags["mnv1.sweep"],
        "run_id": winner.info.run_id,
        "cell": best,
        "model_id": model_id,
    }

    # Nothing fits: exit 2 naming the closest cell; nothing is registered.
    tight = _report(ws, "--register", "smoke-net", "--max-mult-adds", "800000")
    assert tight.returncode == 2, tight.stdout + tight.stderr
    assert (
        "no cell of sweep " in tight.stderr
        and "fits --max-mult-adds 800,000: the closest is mnv1_a0.25_r32 (α 0.25, ρ 32, "
        "834,688 mult-adds), 4.3% over"
        in tight.stderr
    ), tight.stderr
    # No run has a measured latency (no LiteRT export in the smoke study).
    latency = _report(ws, "--register", "smoke-net", "--max-latency-ms", "5")
    assert latency.returncode == 2
    assert "no cell of sweep" in latency.stderr and "latency_ms_fp32_1t" in latency.stderr
    assert [str(v.version) for v in client.search_model_versions("name='smoke-net'")] == ["1"]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_for_checkpoint(
    ws: Workspace, proc: subprocess.Popen[str], epochs_done: int, deadline: float
) -> None:
    """Until the cell's checkpoint has ``epochs_done`` epochs (the worker is mid-cell)."""
    checkpoints = ws.root / ".mnv1" / "checkpoints"
    while True:
        pointers = list(checkpoints.glob("*/latest.json"))
        if pointers and json.loads(pointers[0].read_text())["epochs_done"] >= epochs_done:
            return
        assert proc.poll() is None, f"the sweep ended before epoch {epochs_done}'s checkpoint"
        assert time.monotonic() < deadline, f"no checkpoint of epoch {epochs_done} in time"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_sigkill_then_ctrl_c_mid_cell_and_each_relaunch_resumes_the_same_run(
    ws: Workspace,
) -> None:
    args = (
        "-m",
        "experiment=smoke",
        "model.alpha=0.25",
        "model.resolution=32",
        "train.epochs=3",
        "train.steps_per_epoch=24",
    )
    deadline = time.monotonic() + 500
    # Its own process group, so the whole sweep (launcher and worker) gets the signal at once.
    proc = ws.popen(*args, start_new_session=True)
    try:
        _wait_for_checkpoint(ws, proc, 1, deadline)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    [killed] = ws.children().values()
    assert killed.info.status == "RUNNING"  # left behind by a dead process
    assert ws.steps(killed, "val_top1") == [1]

    # The relaunch finds it RUNNING under a dead owner, marks it KILLED and resumes it; Ctrl-C
    # (SIGINT to the process group, as a terminal sends it) stops it again after epoch 2. A test
    # run started in the background inherits SIGINT ignored; a terminal's command does not.
    proc = ws.popen(*args, start_new_session=True, preexec_fn=_default_sigint)
    try:
        _wait_for_checkpoint(ws, proc, 2, deadline)
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert f"resuming run {killed.info.run_id} (was KILLED)" in output
    assert proc.returncode == 130, output
    assert "Traceback" not in output, output
    # Neither the launcher nor the worker printed TensorFlow's start-up lines.
    assert "absl::InitializeLog" not in output and "cudart_stub" not in output, output
    resume = "Resume with: mnv1-train " + " ".join(args)
    assert f"mnv1-train: interrupted; marked KILLED: mnv1_a0.25_r32. {resume}" in output
    [interrupted] = ws.children().values()
    assert interrupted.info.run_id == killed.info.run_id
    assert interrupted.info.status == "KILLED"
    assert interrupted.data.tags["mnv1.reconciled"].startswith(
        f"owner pid {killed.data.tags['mnv1.pid']} on "
    )
    [parent] = ws.parents()
    assert parent.info.status == "KILLED"

    done = ws.train(*args)
    assert done.returncode == 0, done.stdout
    assert f"resuming run {killed.info.run_id} (was KILLED)" in done.stdout
    [resumed] = ws.children().values()
    tags = resumed.data.tags
    assert resumed.info.run_id == killed.info.run_id
    assert resumed.info.status == "FINISHED"
    assert tags["mnv1.resumed_from_epoch"] == "2"
    assert tags["mnv1.attempt"] == "3"
    for key in PER_EPOCH_METRICS:
        assert ws.steps(resumed, key) == [1, 2, 3], key
    [parent] = ws.parents()
    assert parent.info.status == "FINISHED" and parent.data.tags["mnv1.launches"] == "3"
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
