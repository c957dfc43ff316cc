"""The deploy-side trade-off (``mnv1.export``): LiteRT flatbuffers, int8 top-1 and latency per
cell; the statistics and the report section built on them; ``--compare --metric latency_...``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from mnv1.tracking import schema

from mnv1 import tflite_published
from mnv1.config import PAPER_ALPHAS, PAPER_RESOLUTIONS, ConfigError, ExportConfig
from mnv1.fits import loglog_fit, ranks, spearman
from mnv1.report import deploy
from mnv1.report.compare import compare
from mnv1.report.records import FINISHED, CellRecord

if TYPE_CHECKING:
    from sweep_support import Workspace

# --- statistics -----------------------------------------------------------------------------


def test_loglog_fit_recovers_an_exact_power_law() -> None:
    xs = [14e6, 41e6, 150e6, 569e6]
    fit = loglog_fit(xs, [3e-6 * x**0.8 for x in xs])
    assert fit.slope == pytest.approx(0.8, abs=1e-12)
    assert fit.scale == pytest.approx(3e-6, rel=1e-9)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.points == 4


def test_loglog_fit_r2_falls_with_scatter() -> None:
    # log10 y = 0, 1, 0, 1 against log10 x = 0, 1, 2, 3: slope 0.2 per decade, R² 0.2.
    fit = loglog_fit([1, 10, 100, 1000], [1, 10, 1, 10])
    assert fit.slope == pytest.approx(0.2)
    assert fit.r2 == pytest.approx(0.2)


def test_spearman_pins_a_worked_example() -> None:
    # One swapped pair of four: 1 - 6·Σd²/(n(n²-1)) = 1 - 6·2/60 = 0.8.
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert spearman([1, 2, 3, 4], [40, 30, 20, 10]) == pytest.approx(-1.0)
    assert ranks([5.0, 1.0, 5.0]) == [2.5, 1.0, 2.5]
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # a constant series has no order


def test_published_latencies_cover_the_16_cells_as_printed() -> None:
    assert set(tflite_published.PIXEL3_MS) == {
        (a, r) for a in PAPER_ALPHAS for r in PAPER_RESOLUTIONS
    }
    assert tflite_published.published_ms(1.0, 224, "fp32") == 24.0
    assert tflite_published.published_ms(1.0, 224, "int8") == 13.0
    assert tflite_published.published_ms(0.25, 128, "fp32") == 1.2
    assert tflite_published.published_ms(0.25, 128, "int8") == 0.8
    assert tflite_published.published_ms(0.25, 32, "fp32") is None
    # Within each α the published latency rises with ρ, in both precisions.
    for alpha in PAPER_ALPHAS:
        for kind in (0, 1):
            row = [tflite_published.PIXEL3_MS[(alpha, r)][kind] for r in (128, 160, 192, 224)]
            assert row == sorted(row)


# --- config ---------------------------------------------------------------------------------


def test_thread_counts_are_one_and_the_configured_count() -> None:
    from mnv1.export.cell import check_export_config, thread_counts

    assert thread_counts(ExportConfig(threads=4)) == [1, 4]
    assert thread_counts(ExportConfig(threads=1)) == [1]
    with pytest.raises(ConfigError, match=r"export.threads=0: must be an integer >= 1"):
        check_export_config(ExportConfig(threads=0))
    with pytest.raises(ConfigError, match=r"export.representative_batches=0: must be"):
        check_export_config(ExportConfig(representative_batches=0))


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "export.representative_batches=0",
            "export.representative_batches=0: must be an integer >= 1",
        ),
        (
            "export.threads=0",
            "export.threads=0: must be an integer >= 1 or null (null: every core) (all 4 cells)",
        ),
    ],
)
def test_an_export_config_that_cannot_work_exits_2_before_anything_starts(
    ws: Workspace, override: str, expected: str
) -> None:
    done = ws.train("-m", "experiment=smoke", "export.enabled=true", override)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "nothing was started" in done.stderr
    assert expected in done.stderr
    assert sorted(p.name for p in ws.root.iterdir()) == []


# --- report and compare on records (no store, no TensorFlow) --------------------------------


def _record(
    alpha: float, resolution: int, fp32_ms: float, int8_ms: float, seed: int = 0
) -> CellRecord:
    mult_adds = round(569e6 * alpha**2 * (resolution / 224) ** 2)
    return CellRecord(
        name=f"mnv1_a{alpha:g}_r{resolution}",
        alpha=alpha,
        resolution=resolution,
        variant="separable",
        status=FINISHED,
        run_id=f"run{alpha}{resolution}{seed}",
        top1=50.0 + 10 * alpha,
        mult_adds=mult_adds,
        params=round(4.2e6 * alpha**2),
        seed=seed,
        final={
            schema.METRIC_TFLITE_BYTES: 1024.0 * 1000 * alpha,
            schema.METRIC_TFLITE_INT8_BYTES: 1024.0 * 250 * alpha,
            schema.METRIC_VAL_TOP1_INT8: 0.49 + 0.1 * alpha,
            schema.METRIC_LATENCY_FP32: fp32_ms,
            schema.METRIC_LATENCY_INT8: int8_ms,
        },
    )


def _grid() -> list[CellRecord]:
    # Latency exactly 2e-8 · mult-adds (fp32) and half that (int8): slope 1, R² 1.
    out = []
    for alpha in (1.0, 0.5):
        for resolution in (224, 128):
            ma = round(569e6 * alpha**2 * (resolution / 224) ** 2)
            out.append(_record(alpha, resolution, 2e-8 * ma, 1e-8 * ma))
    return out


def test_the_deploy_table_has_one_row_per_exported_cell_with_the_published_numbers() -> None:
    records = _grid()
    table = deploy.deploy_table(records, "a test CPU")
    assert table is not None
    assert [row[:2] for row in table.rows] == [(1.0, 224), (1.0, 128), (0.5, 224), (0.5, 128)]
    assert table.cell(0, "fp32 size (KB)") == "1,000"
    assert table.cell(0, "int8 size (KB)") == "250"
    assert table.cell(0, "top-1 fp32 (%)") == "60.0"
    assert table.cell(0, "top-1 int8 (%)") == "59.0"
    assert table.cell(0, "published fp32 (ms)") == "24.0"
    assert table.cell(3, "published int8 (ms)") == "1.7"
    assert "a test CPU" in table.notes[0]
    # A sweep that did not export has no such section.
    plain = [CellRecord("c", 1.0, 224, "separable", FINISHED, top1=60.0, mult_adds=1)]
    assert deploy.deploy_table(plain, "cpu") is None


def test_shape_gives_the_fit_and_the_rank_correlation_against_the_published_order() -> None:
    found = deploy.shape(_grid())
    assert found.fits["fp32"].slope == pytest.approx(1.0)
    assert found.fits["fp32"].r2 == pytest.approx(1.0)
    # Ours rank the four cells by mult-adds: 1.0-224 > 1.0-128 > 0.5-224 > 0.5-128. The
    # published Pixel 3 order puts 0.5-224 (7.9 ms) below 1.0-128 (9.0 ms) too: ρ = 1.
    assert found.rho["fp32"] == pytest.approx(1.0)
    assert "Spearman ρ against the published order 1.000" in found.text()


def test_both_figures_plot_every_exported_cell() -> None:
    records = _grid()
    fig = deploy.accuracy_vs_latency(records)
    lines = [line for line in fig.axes[0].lines if line.get_gid() == deploy.OURS_GID]
    assert len(lines) == 4  # α 1.0 and 0.5, float32 and int8 each
    assert sorted(lines[0].get_xdata()) == sorted(
        r.metric(schema.METRIC_LATENCY_FP32) for r in records if r.alpha == 1.0
    )
    fig = deploy.latency_vs_mult_adds(records)
    points = [c for ax in fig.axes for c in ax.collections if c.get_gid() == deploy.OURS_GID]
    published = [
        c for ax in fig.axes for c in ax.collections if c.get_gid() == deploy.PUBLISHED_GID
    ]
    assert [len(c.get_offsets()) for c in points] == [4, 4]
    assert [len(c.get_offsets()) for c in published] == [4, 4]


def test_compare_takes_a_latency_metric() -> None:
    records = _grid()
    text = compare(records, "mnv1_a1_r224", "mnv1_a0.5_r128", "latency_ms_fp32_1t").text()
    expected = 2e-8 * (569e6 - round(569e6 * 0.25 * (128 / 224) ** 2))
    assert f"difference A - B in latency_ms_fp32_1t: {expected:+.2f} ms" in text
    assert "no interval" in text  # one seed per cell: no noise estimate for a latency
    with pytest.raises(ValueError, match=r"--metric='loss': must be val_top1, a latency metric"):
        compare(records, "mnv1_a1_r224", "mnv1_a0.5_r128", "loss")


# --- a trained cell, in this process ---------------------------------------------------------

# The int8 model must give the float model's class on at least this share of a fixed batch.
# Full-integer post-training quantization rounds each weight (per channel) and activation to
# 8 bits, an error of about 1% of each tensor's range; that flips the top class only where the
# float model's top two scores are about that close. On this model, which learned the task
# (its float top-1 is asserted >= 90% first), few images are that close; a broken int8 path
# (a wrong input scale, an uncalibrated range) gives near-constant or chance predictions, ~25%
# agreement on 4 classes.
AGREEMENT = 0.95


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_trained_cell_exports_and_its_int8_model_agrees_with_the_float_one(
    tmp_path: Path,
) -> None:
    import keras
    from train_support import learnable_arrays, make_datasets, tiny_config

    from mnv1.config import from_dict
    from mnv1.export.runtime import Model
    from mnv1.runlog import MemoryRunLog
    from mnv1.training.run import run_training

    cfg = from_dict(
        tiny_config(
            tmp_path,
            train={"epochs": 1, "steps_per_epoch": 96},
            distribute={"cpu_replicas": None},
            export={"enabled": True, "threads": 2, "warmup": 1, "repeats": 5},
        )
    )
    run_log = MemoryRunLog()
    # Seeded first, as a run seeds its process before it reads its data: the shuffle's order
    # (an op seed with the global seed) is then the same whatever this process ran before.
    keras.utils.set_random_seed(cfg.train.seed)
    data = make_datasets(train_count=256, val_count=128, resolution=32, global_batch=16)
    run_training(cfg, run_log, datasets=data, checkpoint_dir=tmp_path / "ck")

    fp32 = Model(run_log.files[schema.ARTIFACT_TFLITE_FP32])
    int8 = Model(run_log.files[schema.ARTIFACT_TFLITE_INT8])
    assert int8.input["dtype"] == np.int8  # full-integer: the input is quantized too
    assert int8.output["dtype"] == np.int8
    # The validation split run_training measured val_top1 on (make_datasets: seed + 1).
    images, labels = learnable_arrays(128, 32, 1)
    float_classes = fp32.predict(list(images))
    int8_classes = int8.predict(list(images))
    val_top1 = run_log.last(schema.METRIC_VAL_TOP1)
    assert val_top1 >= 0.9, val_top1
    assert len(set(float_classes.tolist())) == 4  # the float model tells every class apart
    # The float flatbuffer is the trained model: the same top-1 within one image.
    assert abs(float(np.mean(float_classes == labels)) - val_top1) <= 1 / 128
    assert float(np.mean(int8_classes == float_classes)) >= AGREEMENT
    # val_top1_int8 is the int8 flatbuffer through the interpreter on those images.
    assert run_log.last(schema.METRIC_VAL_TOP1_INT8) == float(np.mean(int8_classes == labels))
    assert run_log.last(schema.METRIC_INT8_TOP1_DROP) == pytest.approx(
        val_top1 - run_log.last(schema.METRIC_VAL_TOP1_INT8)
    )
    assert run_log.last(schema.METRIC_TFLITE_BYTES) == len(
        run_log.files[schema.ARTIFACT_TFLITE_FP32]
    )
    assert run_log.last(schema.METRIC_TFLITE_INT8_BYTES) == len(
        run_log.files[schema.ARTIFACT_TFLITE_INT8]
    )
    # int8 weights take a quarter of float32's bytes; the file also holds the graph.
    assert run_log.last(schema.METRIC_TFLITE_INT8_BYTES) < 0.5 * run_log.last(
        schema.METRIC_TFLITE_BYTES
    )
    for kind in ("fp32", "int8"):
        for threads in (1, 2):
            median = run_log.last(schema.latency_metric(kind, threads))
            p90 = run_log.last(schema.latency_metric(kind, threads, p90=True))
            assert 0 < median <= p90 and math.isfinite(p90)
    assert run_log.tags[schema.TAG_EXPORT_THREADS] == "1,2"
    assert run_log.tags[schema.TAG_EXPORT_RUNTIME].startswith("ai-edge-litert ")
    assert run_log.tags[schema.TAG_EXPORT_CPU]


# --- a sweep with export on ------------------------------------------------------------------

FAILING_EXPORT = "mnv1_a0.5_r48"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_smoke_sweep_exports_every_cell_and_a_conversion_failure_fails_that_cell_only(
    ws: Workspace,
) -> None:
    done = ws.train(
        "-m",
        "experiment=smoke",
        # Two cells at once: the sweep's own time halves on two cores.
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "export.enabled=true",
        "export.warmup=1",
        "export.repeats=3",
        env=ws.failing_export_env(FAILING_EXPORT),
    )
    assert done.returncode == 1, done.stdout
    # The converter's and interpreter's routine lines stay off the console (mnv1.native_log).
    assert "fully_quantize" not in done.stdout + done.stderr
    assert "XNNPACK delegate" not in done.stdout + done.stderr
    children = ws.children()
    assert {name: run.info.status for name, run in children.items()} == {
        "mnv1_a0.25_r32": "FINISHED",
        "mnv1_a0.25_r48": "FINISHED",
        "mnv1_a0.5_r32": "FINISHED",
        FAILING_EXPORT: "FAILED",
    }
    # The failed cell trained, then the converter refused; its message is the cell's error.
    failed = children.pop(FAILING_EXPORT)
    traceback = ws.text(failed, schema.TRACEBACK_ARTIFACT)
    assert "ExportError: LiteRT conversion to int8 failed:" in traceback
    assert "inference_input_type" in traceback  # the converter's own words
    assert schema.METRIC_VAL_TOP1 in failed.data.metrics

    client = ws.client()
    for name, run in children.items():
        run_id = run.info.run_id
        files = {f.path: f.file_size for f in client.list_artifacts(run_id, "tflite")}
        metrics = run.data.metrics
        assert files == {
            schema.ARTIFACT_TFLITE_FP32: metrics[schema.METRIC_TFLITE_BYTES],
            schema.ARTIFACT_TFLITE_INT8: metrics[schema.METRIC_TFLITE_INT8_BYTES],
        }, name
        assert 0.0 <= metrics[schema.METRIC_VAL_TOP1_INT8] <= 1.0
        assert metrics[schema.METRIC_INT8_TOP1_DROP] == pytest.approx(
            metrics[schema.METRIC_VAL_TOP1] - metrics[schema.METRIC_VAL_TOP1_INT8]
        )
        threads = [int(t) for t in run.data.tags[schema.TAG_EXPORT_THREADS].split(",")]
        assert threads[0] == 1
        for kind in ("fp32", "int8"):
            for count in threads:
                median = metrics[schema.latency_metric(kind, count)]
                assert 0 < median <= metrics[schema.latency_metric(kind, count, p90=True)]
        # The artifact is the flatbuffer that was measured (same size to the byte).
        local = client.download_artifacts(run_id, schema.ARTIFACT_TFLITE_INT8, str(ws.root))
        assert Path(local).stat().st_size == metrics[schema.METRIC_TFLITE_INT8_BYTES]
        # The smoke study logs its models: both flatbuffers also sit on the cell's LoggedModel.
        model_id = run.data.tags["mnv1.model_id"]
        on_model = {a.path for a in client.list_logged_model_artifacts(model_id, "tflite")}
        assert on_model == set(files), name

    # The report has the deploy-side section, with the three exported cells.
    report = (ws.root / "reports" / "smoke" / "report.md").read_text(encoding="utf-8")
    assert "## Deploy-side trade-off" in report
    table = (ws.root / "reports" / "smoke" / "deploy.csv").read_text(encoding="utf-8")
    assert len(table.strip().splitlines()) == 1 + 3
    for name in (deploy.ACCURACY_VS_LATENCY, deploy.LATENCY_VS_MULT_ADDS):
        assert (ws.root / "reports" / "smoke" / name).stat().st_size > 0

    # mnv1-report --compare takes a latency metric.
    from mnv1.cli.report import main as report_main

    code = report_main(
        [
            "--experiment",
            "smoke",
            "--tracking-uri",
            ws.uri,
            "--compare",
            "mnv1_a0.25_r32",
            "mnv1_a0.25_r48",
            "--metric",
            "latency_ms_int8_1t",
        ]
    )
    assert code == 0


# --- the plan ----------------------------------------------------------------------------------


def test_the_plan_adds_the_probed_export_cost_to_each_cell_and_prints_it() -> None:
    from mnv1.config import RunConfig
    from mnv1.sweep.plan import Probe, ProbePoint, format_plan, make_plan, shape_of

    cfg = RunConfig()
    cfg.model.alpha, cfg.model.resolution = 0.25, 128
    cfg.train.epochs, cfg.train.steps_per_epoch, cfg.train.batch_size = 1, 10, 10
    cfg.train.bn_recalibration_batches = 0
    cfg.data.synthetic.val_size = 30
    cfg.export.enabled, cfg.export.threads, cfg.export.warmup, cfg.export.repeats = True, 2, 5, 45
    shape = shape_of(cfg)
    run = {"time_import_s": 10.0, "time_trace_s": 2.0, "train_images_per_sec": 10.0}
    probe = Probe(
        "host",
        "key",
        "now",
        (
            ProbePoint(
                shape,
                1000,
                10,
                1,
                6,
                30,
                0,
                run,
                export_convert_s=4.0,
                export_fp32_run_s=0.002,
                export_int8_run_s=0.001,
            ),
        ),
        {shape: 1000},
    )
    [with_export] = make_plan([cfg], probe).cells
    # 4 s conversions + 30 validation images × 1 ms (int8) + 2 thread counts × (5 + 45) runs
    # × (2 + 1) ms = 4 + 0.03 + 0.3.
    assert with_export.export_s == pytest.approx(4.33)
    cfg.export.enabled = False
    [without] = make_plan([cfg], probe).cells
    assert without.export_s is None
    assert with_export.seconds == pytest.approx((without.seconds or 0) + 4.33)
    text = format_plan(make_plan([with_export_cfg := cfg], probe))
    assert "LiteRT export" not in text
    with_export_cfg.export.enabled = True
    text = format_plan(make_plan([with_export_cfg], probe))
    assert "of which LiteRT export (export.enabled): 4 s to 4 s per cell, 4 s in all" in text


# --- mnv1-bench latency ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_latency_prints_ratios_speed_ups_the_fit_and_the_rank_correlation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import json

    from mnv1.cli.bench import main

    args = ["latency", "--cell", "0.25:128", "--cell", "0.25:160", "--format", "json"]
    assert main([*args, "--runs", "2", "--repeats", "2", "--warmup", "1"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["benchmark"] == "latency"
    rows = document["results"]
    assert [(r["alpha"], r["resolution"]) for r in rows] == [(0.25, 128), (0.25, 160)]
    assert [r["mult_adds"] for r in rows] == [13_570_048, 21_059_200]
    for r in rows:
        assert r["fp32_ratio"] == r["fp32_ms"] / r["keras_fp32_ms"]
        assert r["int8_ratio"] == r["int8_ms"] / r["keras_int8_ms"]
        assert r["int8_speedup"] == r["fp32_ms"] / r["int8_ms"]
        assert len(r["runs"]["ours_fp32"]) == 2  # one median per repeat
    meta = document["meta"]
    assert meta["runtime"].startswith("ai-edge-litert ")
    assert meta["threads"] == 1
    for key in (
        "cpu",
        "date",
        "load average 1/5/15 min (before)",
        "fp32 latency ∝ mult-adds^slope",
        "int8 Spearman ρ vs published (2 cells)",
        "published source",
    ):
        assert key in meta, key


def test_bench_latency_refuses_a_bad_count(capsys: pytest.CaptureFixture[str]) -> None:
    from mnv1.cli.bench import main

    assert main(["latency", "--cell", "0.25:32", "--threads", "0"]) == 2
    assert "--threads=0: must be >= 1" in capsys.readouterr().out


def test_a_jsonl_run_log_keeps_a_file_beside_its_records(tmp_path: Path) -> None:
    from mnv1.runlog import JsonlRunLog

    run_log = JsonlRunLog(tmp_path / "run.jsonl")
    run_log.log_file(schema.ARTIFACT_TFLITE_INT8, b"\x00TFL3")
    target = tmp_path / "run.files" / "tflite" / "model_int8.tflite"
    assert target.read_bytes() == b"\x00TFL3"
    [record] = run_log.records()
    assert record == {"kind": "file", "name": schema.ARTIFACT_TFLITE_INT8, "path": str(target)}
