"""The plan's probe process: ``python -m mnv1.training.probe --in REQUEST.json --out RESULT.json``.

Started like a cell's worker (forked from the same warm zygote, or a fresh interpreter where the
cells start cold: ``mnv1.sweep.warm.start_worker``, as the orchestrator starts one),
it runs a short but real cell of the timed shape: the same ``bootstrap`` and ``run_training`` a
worker runs, logging through the same run log into a run of a throwaway MLflow store (a SQLite
file, as the default store of a sweep, created by the parent as a sweep creates its store), on a
stand-in dataset prepared in a temporary directory. Every second a cell pays besides its
training budget is then measured the way a cell measures it (``mnv1.timing``: start-up,
TensorFlow import, data, build, first step, evaluation, checkpoints, tracking with the model
logged, the rest), not assumed; only the probe's own work (counting the grid's mult-adds,
preparing the stand-in data) is kept apart, as phase ``probe_own``, and the parent times the
process's exit (``mnv1.sweep.probe``).

The short run: ``SKIPPED_STEPS + TIMED_STEPS`` steps per epoch (the throughput meter leaves the
first ``SKIPPED_STEPS`` of each epoch out), the cell's epochs up to ``PROBE_EPOCHS``, its
validation images up to ``PROBE_VAL_EXAMPLES``; the plan scales the per-epoch and per-batch parts
to the cell's (``mnv1.sweep.figures``). The stand-in dataset is the embedded synthetic one with
the cell's image size, classes and augmentation where the cell trains on it; for another source,
synthetic images of ``STANDIN_IMAGE_SIZE`` px and at most ``SYNTHETIC_MAX_CLASSES`` classes (what
that data costs a cell is learned from the cell's own runs: ``mnv1.sweep.learned``). With
``export.enabled`` the LiteRT conversion and single-image runs are timed apart, after the run.

The request (``ProbeRequest``, as JSON) names the configs of the grid's shapes
(``mnv1.sweep.plan.shape_of``); the probe counts the mult-adds of ``count`` of them and times
one: ``time`` is a shape, or ``"max"`` for the one with the most work per step (mult-adds ×
batch), found from those counts. The answer is a ``ProbeResult``. The parent side, with its
cache, is ``mnv1.sweep.probe``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from mnv1.config import SYNTHETIC_MAX_CLASSES, DataConfig, RunConfig, SyntheticConfig, from_dict
from mnv1.runlog import TimedRunLog
from mnv1.timing import (
    DATA,
    IMPORT,
    PHASES,
    PROCESS_START,
    TRACKING,
    WORKER_OTHER,
    PhaseRecorder,
    metric_name,
)
from mnv1.tracking.schema import METRIC_TRAIN_IPS
from mnv1.worker_contract import spawn_seconds

TIMED_STEPS = 3
"""Steady steps per epoch that the throughput meter times (``Throughput``)."""
SKIPPED_STEPS = 3
"""The first steps of each epoch, which the throughput meter leaves out (``Throughput.skip``)."""
PROBE_EPOCHS = 2
PROBE_VAL_EXAMPLES = 1024
"""At most this many validation images in the probe's run. A cell with more is estimated by
scaling the probe's evaluation per batch, which spreads the evaluation's one-off tracing over the
probe's batches and so counts it again for every further batch: such a cell errs long (until
its own finished runs correct it)."""
STANDIN_IMAGE_SIZE = 256
PROBE_OWN = "probe_own"
"""Phase of the probe's own work, which no cell pays: counting mult-adds, preparing the
stand-in dataset."""


@dataclass(frozen=True)
class ProbeRequest:
    """What the probe process is asked: the configs and class counts of the grid's shapes, the
    shapes whose mult-adds it counts, those already known, and the shape it times."""

    configs: dict[str, RunConfig]
    classes: dict[str, int]
    time: str
    """A shape, or ``"max"``: the one with the most work per step among the counted ones."""
    count: tuple[str, ...] = ()
    known: dict[str, int] = field(default_factory=dict)
    val: dict[str, int] = field(default_factory=dict)
    """Validation images a cell of each shape evaluates, where known before its data is."""
    run_uri: str = ""
    run_id: str = ""
    """The throwaway store and the run in it that the probe's run logs into, opened by the
    parent as the orchestrator opens a cell's run (so this process pays what a worker pays to
    open the store, not to create it)."""
    data_dir: str = ""
    """Where the stand-in dataset is prepared (the probes of one grid share it); empty: in the
    run's folder."""
    work_dir: str = ""
    """The run's folder (checkpoints): the parent's temporary directory, removed with it even
    when this process is killed; empty: a temporary directory of this process."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # the configs too: asdict recurses into them

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeRequest:
        return cls(
            configs={shape: from_dict(c) for shape, c in data["configs"].items()},
            classes={shape: int(n) for shape, n in data["classes"].items()},
            time=str(data["time"]),
            count=tuple(data.get("count", ())),
            known={shape: int(n) for shape, n in data.get("known", {}).items()},
            val={shape: int(n) for shape, n in data.get("val", {}).items()},
            run_uri=str(data.get("run_uri", "")),
            run_id=str(data.get("run_id", "")),
            data_dir=str(data.get("data_dir", "")),
            work_dir=str(data.get("work_dir", "")),
        )


@dataclass(frozen=True)
class ProbeTimings:
    """The timed shape's short run, measured in a worker-like process (the sweep's plan extends
    it as ``mnv1.sweep.plan.ProbePoint`` with what the parent measured)."""

    shape: str
    mult_adds: int
    batch: int
    epochs: int
    steps_per_epoch: int
    val_examples: int
    bn_batches: int
    """The run's shape: epochs × steps, validation images and BatchNorm re-estimation batches."""
    metrics: dict[str, float]
    """Named as a cell's final metrics are: ``time_<phase>_s`` of every phase
    (``mnv1.timing.PHASES``) and ``train_images_per_sec`` (the steady training rate)."""
    ended_at: float = 0.0
    """Wall-clock time (``time.time()``) when the process had nothing left but to exit: the
    parent times the exit from it."""
    export_convert_s: float = 0.0
    """Both LiteRT conversions (float32, int8 with calibration); 0 when export is off."""
    export_fp32_run_s: float = 0.0
    """One single-image run of the float32 flatbuffer, 1 thread."""
    export_int8_run_s: float = 0.0


@dataclass(frozen=True)
class ProbeResult:
    """The counted mult-adds of every shape asked (and known), and the timed shape's run."""

    mult_adds: dict[str, int]
    point: ProbeTimings

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResult:
        return cls(
            mult_adds={shape: int(n) for shape, n in data["mult_adds"].items()},
            point=ProbeTimings(**data["point"]),
        )


def probe_val_examples(val_examples: int | None) -> int:
    """Validation images of the probe's run: the cell's, up to ``PROBE_VAL_EXAMPLES``."""
    return min(val_examples or PROBE_VAL_EXAMPLES, PROBE_VAL_EXAMPLES)


def standin_data(cfg: RunConfig, num_classes: int, val_examples: int, data_dir: Path) -> DataConfig:
    """The probe run's dataset: synthetic, in ``data_dir``, with the cell's image size, classes
    and augmentation where the cell's data is synthetic too, and just enough training images
    for the short run (read once, as a short cell reads its split: no training cache)."""
    t = cfg.train
    epochs = min(t.epochs, PROBE_EPOCHS)
    images = epochs * (SKIPPED_STEPS + TIMED_STEPS) * t.batch_size
    classes = min(num_classes, SYNTHETIC_MAX_CLASSES)
    base = cfg.data.synthetic if cfg.data.source == "synthetic" else SyntheticConfig()
    image_size = base.image_size if cfg.data.source == "synthetic" else STANDIN_IMAGE_SIZE
    synthetic = dataclasses.replace(
        base,
        train_size=max(images, classes, t.bn_recalibration_batches * t.batch_size),
        val_size=val_examples,
        num_classes=classes,
        image_size=image_size,
    )
    defaults = DataConfig()
    return dataclasses.replace(
        defaults,
        data_dir=str(data_dir),
        augment=cfg.data.augment,
        cache=cfg.data.cache,
        synthetic=synthetic,
    )


def probe_config(
    cfg: RunConfig,
    num_classes: int,
    val_examples: int,
    folder: Path,
    uri: str,
    data_dir: Path | None = None,
) -> RunConfig:
    """The timed shape's short run: the cell's model, batch, recipe and distribution; its
    epochs up to ``PROBE_EPOCHS`` (a warm-up shortened with them, so it fits the schedule as
    it fits the cell's), ``SKIPPED_STEPS + TIMED_STEPS`` steps each; checkpoints in
    ``folder``; the stand-in data in ``data_dir`` (default: ``folder``/tfds); the throwaway
    store at ``uri``; export off (timed apart)."""
    t = cfg.train
    epochs = min(t.epochs, PROBE_EPOCHS)
    train = dataclasses.replace(
        t,
        epochs=epochs,
        steps_per_epoch=SKIPPED_STEPS + TIMED_STEPS,
        target_minutes=None,
        warmup_epochs=t.warmup_epochs * epochs / t.epochs,
        checkpoint_dir=str(folder / "checkpoints"),
    )
    tracking = dataclasses.replace(cfg.tracking, uri=uri, experiment="probe", rerun=False)
    return dataclasses.replace(
        cfg,
        data=standin_data(cfg, num_classes, val_examples, data_dir or folder / "tfds"),
        train=train,
        tracking=tracking,
        export=dataclasses.replace(cfg.export, enabled=False),
        tuned=None,
    )


def probe(request: ProbeRequest, phases: PhaseRecorder) -> ProbeResult:
    """Answer one request in this fresh process: bootstrap and import as a cell's worker does
    (before TensorFlow is imported), count the mult-adds, then run the chosen shape's short
    cell."""
    first = next(iter(request.configs.values()))

    with phases.measure(IMPORT):  # what a worker imports and runs before training
        from mnv1.training.bootstrap import bootstrap

        bootstrap(first.distribute, first.train)
        import mnv1.training.run
    with phases.measure(DATA):  # the data layer (TensorFlow Datasets), as a run loads it
        import mnv1.data.pipeline  # noqa: F401
    with phases.measure(PROBE_OWN):
        mult_adds = _count(request)
    shape = request.time
    if shape == "max":
        configs = request.configs
        shape = max(mult_adds, key=lambda s: mult_adds[s] * configs[s].train.batch_size)
    if request.work_dir:
        return ProbeResult(
            mult_adds, _run_shape(request, shape, mult_adds[shape], Path(request.work_dir), phases)
        )
    with tempfile.TemporaryDirectory(prefix="mnv1-probe-run-") as tmp:
        timings = _run_shape(request, shape, mult_adds[shape], Path(tmp), phases)
    return ProbeResult(mult_adds, timings)


def _count(request: ProbeRequest) -> dict[str, int]:
    """The mult-adds of the shapes to count, and those the request already knows."""
    from mnv1.costs import costs_for

    mult_adds = {
        shape: costs_for(
            request.configs[shape].model.alpha,
            request.configs[shape].model.resolution,
            request.classes[shape],
            request.configs[shape].model.variant,
        ).mult_adds
        for shape in request.count
    }
    mult_adds.update(request.known)
    return mult_adds


def _run_shape(
    request: ProbeRequest,
    shape: str,
    mult_adds: int,
    folder: Path,
    phases: PhaseRecorder,
) -> ProbeTimings:
    """The shape's short cell: the stand-in data first (the probe's own), then the run log and
    ``run_training`` as a worker opens and runs them, the run log counted as tracking; the
    timings are this process's phases, as a worker logs them."""
    from mnv1.data.prepare import prepare
    from mnv1.training.run import run_training
    from mnv1.training.worker import make_run_log

    cell = request.configs[shape]
    val = probe_val_examples(request.val.get(shape))
    data_dir = Path(request.data_dir) if request.data_dir else None
    cfg = probe_config(cell, request.classes[shape], val, folder, request.run_uri, data_dir)
    with phases.measure(PROBE_OWN):
        prepare(cfg.data)
    with phases.measure(TRACKING):  # as a worker opens its run log (system metrics included)
        run_log = make_run_log(f"mlflow:{request.run_id}", cfg)
    result = run_training(cfg, TimedRunLog(run_log, phases), phases=phases)
    phases.end(WORKER_OTHER)
    metrics = {metric_name(p): 0.0 for p in PHASES}
    metrics.update(phases.metrics())
    metrics.pop(metric_name(PROBE_OWN), None)
    # The worker's last write, outside its phases like this one.
    run_log.log_metrics(metrics)
    if math.isfinite(result.train_images_per_sec):
        metrics[METRIC_TRAIN_IPS] = result.train_images_per_sec
    export = _probe_export(cell, request.classes[shape]) if cell.export.enabled else {}
    return ProbeTimings(
        shape=shape,
        mult_adds=mult_adds,
        batch=cfg.train.batch_size,
        epochs=cfg.train.epochs,
        steps_per_epoch=SKIPPED_STEPS + TIMED_STEPS,
        val_examples=result.val_examples,
        bn_batches=cfg.train.bn_recalibration_batches,
        metrics=metrics,
        **export,
    )


def _probe_export(cfg: RunConfig, num_classes: int) -> dict[str, float]:
    """What ``mnv1.export.cell`` costs this shape: both conversions (calibrated on one batch of
    random images, as many times as the cell's representative batches), and one single-image
    run of each flatbuffer (median of a few, after one warm-up)."""
    import numpy as np

    from mnv1.export.convert import to_flatbuffers
    from mnv1.export.runtime import time_flatbuffer
    from mnv1.model import build_mobilenet_v1

    m = cfg.model
    model = build_mobilenet_v1(m.alpha, m.resolution, num_classes, variant=m.variant)
    size, batch = m.resolution, cfg.train.batch_size
    images = np.random.default_rng(0).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    start = time.perf_counter()
    flat = to_flatbuffers(model, [images] * cfg.export.representative_batches)
    convert_s = time.perf_counter() - start
    return {
        "export_convert_s": convert_s,
        "export_fp32_run_s": time_flatbuffer(flat.fp32, 1, 1, 5).median_ms / 1000.0,
        "export_int8_run_s": time_flatbuffer(flat.int8, 1, 1, 5).median_ms / 1000.0,
    }


def main(argv: list[str] | None = None) -> int:
    phases = PhaseRecorder()
    started = spawn_seconds()
    if started is not None:
        phases.add(PROCESS_START, started)
    phases.begin(WORKER_OTHER)  # as a worker: the outermost phase, what no other claims
    parser = argparse.ArgumentParser(prog="python -m mnv1.training.probe")
    parser.add_argument("--in", dest="request", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    request = ProbeRequest.from_dict(json.loads(args.request.read_text()))
    with phases.measure(TRACKING):  # a worker's MLflow run log imports mlflow first
        import mnv1.tracking.runlog  # noqa: F401
    result = probe(request, phases)
    point = dataclasses.replace(result.point, ended_at=time.time())
    result = dataclasses.replace(result, point=point)
    args.out.write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    return 0


def process_main(argv: list[str] | None = None) -> NoReturn:
    """The whole life of the probe process: ``python -m mnv1.training.probe`` runs this, and so
    does a probe forked by the zygote (``mnv1.training.zygote``), as a cell's worker is."""
    from mnv1.native_log import install
    from mnv1.training.worker import exit_now

    install()  # quiet as a worker is (TF_CPP_MIN_LOG_LEVEL)
    sys.stdout.flush()
    exit_now(main(argv))


if __name__ == "__main__":
    process_main()
