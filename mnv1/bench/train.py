"""Training images/s of the full ``run_training`` path vs ``keras.applications.MobileNet``.

Both train in this process on one device (``OneDeviceStrategy`` on the CPU, or the first GPU),
on the same in-memory batch of random images (no input pipeline cost on either side), with 1000
classes as on ImageNet, the global batch given, and the same steady-state clock: the
``mnv1.training.callbacks.Throughput`` meter, which leaves out the first 3 steps and times from
the end of
step 3 to the end of the last step. Ours includes everything a real run pays per step (the NaN
check's host sync, checkpointing at the end of the epoch is outside the clock); the reference is
Keras's MobileNet compiled with RMSprop and the same loss, with the same per-step host sync. The
runs alternate A B A B, so machine drift hits both; each figure is the median over repeats.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mnv1.bench import median, parse_cell, render

HELP = "training images/s of run_training vs keras.applications.MobileNet, same process"

SKIP_STEPS = 3


@dataclass
class TrainBench:
    alpha: float
    resolution: int
    batch: int
    steps: int
    repeats: int
    ours_ips: float
    keras_ips: float
    ratio: float
    """ours / keras.applications.MobileNet (≥ 1.0: the full training path is no slower)."""
    ours_runs: list[float]
    keras_runs: list[float]


def _datasets(resolution: int, batch: int, classes: int = 1000) -> Any:
    import numpy as np
    import tensorflow as tf

    from mnv1.data.types import Datasets, Fingerprint

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, resolution, resolution, 3)).astype(np.float32)
    y = rng.integers(0, classes, (batch,)).astype(np.int32)
    batch_ds = tf.data.Dataset.from_tensors((x, y))
    return Datasets(
        train=batch_ds.repeat(),
        val=batch_ds,
        num_classes=classes,
        train_examples=batch,
        val_examples=batch,
        fingerprint=Fingerprint("random", "1", {"train": batch, "validation": batch}, classes),
    )


def ours(alpha: float, resolution: int, batch: int, steps: int, data: Any) -> float:
    from mnv1.config import RunConfig
    from mnv1.runlog import MemoryRunLog
    from mnv1.training.run import run_training

    cfg = RunConfig()
    cfg.model.alpha, cfg.model.resolution = alpha, resolution
    cfg.train.batch_size, cfg.train.steps_per_epoch, cfg.train.epochs = batch, steps, 1
    cfg.train.bn_recalibration_batches = 1
    cfg.tracking.log_model = False
    # The run's one line per epoch would interleave with the report (and break --format json).
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()):
        result = run_training(cfg, MemoryRunLog(), datasets=data, checkpoint_dir=Path(tmp))
    return result.train_images_per_sec


def keras_reference(alpha: float, resolution: int, batch: int, steps: int, data: Any) -> float:
    import keras

    from mnv1.training.callbacks import StopOnNaN, Throughput
    from mnv1.training.run import training_data

    keras.utils.clear_session()
    model = keras.applications.MobileNet(
        input_shape=(resolution, resolution, 3), alpha=alpha, weights=None, classes=1000
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-3, momentum=0.9, epsilon=1.0),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
        jit_compile=False,
    )
    meter = Throughput(batch, skip=SKIP_STEPS)
    model.fit(
        training_data(data.train, data.num_classes),
        steps_per_epoch=steps,
        epochs=1,
        callbacks=[StopOnNaN(lambda: 0.0), meter],  # the same per-step host sync as ours
        verbose=0,
        shuffle=False,
    )
    return meter.images_per_sec


def bench_train(alpha: float, resolution: int, batch: int, steps: int, repeats: int) -> TrainBench:
    data = _datasets(resolution, batch)
    ours_runs: list[float] = []
    keras_runs: list[float] = []
    for repeat in range(repeats):
        order = [ours, keras_reference] if repeat % 2 == 0 else [keras_reference, ours]
        for fn in order:
            ips = fn(alpha, resolution, batch, steps, data)
            (ours_runs if fn is ours else keras_runs).append(ips)
    ours_ips, keras_ips = median(ours_runs), median(keras_runs)
    return TrainBench(
        alpha=alpha,
        resolution=resolution,
        batch=batch,
        steps=steps,
        repeats=repeats,
        ours_ips=ours_ips,
        keras_ips=keras_ips,
        ratio=ours_ips / keras_ips,
        ours_runs=ours_runs,
        keras_runs=keras_runs,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cells",
        nargs="+",
        type=parse_cell,
        default=[(1.0, 224), (0.25, 128)],
        help="ALPHA:RESOLUTION pairs (default: 1.0:224 0.25:128)",
    )
    parser.add_argument("--batch", type=int, default=32, help="global batch (default 32)")
    parser.add_argument(
        "--steps", type=int, default=12, help=f"steps per run, the first {SKIP_STEPS} untimed"
    )
    parser.add_argument("--repeats", type=int, default=2, help="A B runs per cell (default 2)")


def run(args: argparse.Namespace) -> int:
    if args.steps <= SKIP_STEPS:
        raise SystemExit(f"--steps must be more than {SKIP_STEPS} (the untimed first steps)")
    load_before = os.getloadavg()[0]
    rows = [
        asdict(bench_train(alpha, resolution, args.batch, args.steps, args.repeats))
        for alpha, resolution in args.cells
    ]
    load_after = os.getloadavg()[0]
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    meta = {
        "device": gpus[0].name if gpus else f"CPU ({os.cpu_count()} cores visible)",
        "timed steps per run": args.steps - SKIP_STEPS,
        # A shared machine: the 1-minute load average says how busy it was.
        "load average before/after": f"{load_before:.2f} / {load_after:.2f}",
    }
    columns = {
        "alpha": "α",
        "resolution": "ρ",
        "batch": "batch",
        "ours_ips": "run_training img/s",
        "keras_ips": "keras MobileNet img/s",
        "ratio": "ratio",
    }
    print(render("Training throughput", columns, rows, meta, args.format))
    return 0
