"""Input pipeline vs model: can the data keep up at each resolution ρ?

For each ρ this measures, in one process on the same batch size:

* **pipeline images/s**: training batches out of ``load_datasets`` (decode, crop, flip, resize,
  batch), warm (``load_datasets`` fills the in-memory cache as it builds the pipeline), as the
  median of several repeats; plus one cold pass (decode included) of the same pipeline built
  without a cache;
* **train images/s**: ``train_on_batch`` steps of ``build_mobilenet_v1(α, ρ)`` on one batch
  from that pipeline (forward, backward and optimizer update), median of several repeats;
* **input wait share**: the share of a real ``fit``'s step time spent waiting for input. The
  same model fits the same number of steps once on the real training stream
  (``mnv1.training.run.training_data`` over the pipeline) and once on one batch of it cached in
  memory
  (``take(1).cache()``, then the same ``training_data``), alternated A B / B A over the repeats;
  share = max(0, 1 - const / real) of the median steady step times. Steady means from the end
  of each fit's first step to the end of its last, so tracing and the iterator's start (filling
  the shuffle buffer, once per pass over the data) are left out.

A pipeline/train ratio above 1 means the input pipeline is not the bottleneck at that ρ; a wait
share near 0 says the same from inside ``fit``, where the pipeline competes with training for
the same cores.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from mnv1.bench import median, render
from mnv1.config import PAPER_RESOLUTIONS, DataConfig, SyntheticConfig

HELP = "input-pipeline images/s next to the model's training images/s at each ρ"

# Size flags left unset take these values (``--tiny``: a seconds-long smoke run). None for the
# synthetic sizes means the dataset's own defaults (5,000 / 1,000 images at 256 px).
DEFAULTS: dict[str, Any] = {
    "alpha": 1.0,
    "batch_size": 32,
    "batches": 20,
    "train_steps": 5,
    "fit_steps": 10,
    "repeats": 3,
    "train_size": None,
    "val_size": None,
    "image_size": None,
}
TINY: dict[str, Any] = {
    "alpha": 0.25,
    "batch_size": 8,
    "batches": 4,
    "train_steps": 2,
    "fit_steps": 3,
    "repeats": 2,
    "train_size": 64,
    "val_size": 16,
    "image_size": 64,
}


@dataclass
class RhoResult:
    resolution: int
    pipeline_images_per_sec: float
    pipeline_cold_images_per_sec: float
    train_images_per_sec: float
    ratio: float
    input_wait_share: float
    """Share of a real fit's steady step time spent waiting for input (0: none)."""
    fit_step_seconds: float
    """Median steady step time of the fit on the real pipeline."""
    fit_step_seconds_cached: float
    """Median steady step time of the same fit on one cached batch."""
    pipeline_repeats: list[float]
    train_repeats: list[float]
    fit_repeats: list[float]
    fit_cached_repeats: list[float]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resolutions",
        type=int,
        nargs="+",
        default=list(PAPER_RESOLUTIONS),
        help="ρ values (default: the paper's grid 224 192 160 128)",
    )
    sizes = {
        "alpha": (float, "width multiplier of the model"),
        "batch_size": (int, "global batch, for the pipeline and the model"),
        "batches": (int, "pipeline batches per repeat"),
        "train_steps": (int, "train steps per repeat"),
        "fit_steps": (int, "fit steps per repeat for the input wait share (at least 3)"),
        "repeats": (int, "repeats; the median is reported"),
        "train_size": (int, "synthetic training images"),
        "val_size": (int, "synthetic validation images"),
        "image_size": (int, "synthetic native image size"),
    }
    for key, (kind, text) in sizes.items():
        parser.add_argument(
            "--" + key.replace("_", "-"),
            type=kind,
            default=None,
            help=f"{text} (default {DEFAULTS[key]}, --tiny {TINY[key]})",
        )
    parser.add_argument("--tiny", action="store_true", help="seconds-long smoke run")
    parser.add_argument("--source", default="synthetic", help="data.source")
    parser.add_argument("--name", default=None, help="data.name (source=tfds)")
    parser.add_argument("--path", default=None, help="data.path (source=folder)")
    parser.add_argument("--data-dir", default=None, help="data.data_dir (default: config default)")
    parser.add_argument("--manual-dir", default=None, help="data.manual_dir")
    parser.add_argument("--augment", default="standard", help="data.augment")


def resolve_sizes(args: argparse.Namespace) -> None:
    """Fill the size flags left unset from ``TINY`` (with ``--tiny``) or ``DEFAULTS``."""
    table = TINY if args.tiny else DEFAULTS
    for key, value in table.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def data_config(args: argparse.Namespace) -> DataConfig:
    cfg = DataConfig(source=args.source, augment=args.augment)
    if args.name is not None:
        cfg.name = args.name
    cfg.path = args.path
    cfg.manual_dir = args.manual_dir
    if args.data_dir is not None:
        cfg.data_dir = args.data_dir
    synthetic = SyntheticConfig()
    for key in ("train_size", "val_size", "image_size"):
        if getattr(args, key) is not None:
            setattr(synthetic, key, getattr(args, key))
    cfg.synthetic = synthetic
    return cfg


def _images_per_sec(images: int, seconds: float) -> float:
    return images / seconds if seconds > 0 else math.inf


def measure_pipeline(
    train: Any, uncached: Any, train_examples: int, batch: int, batches: int, repeats: int
) -> tuple[float, list[float]]:
    """(cold first-pass images/s, warm images/s per repeat) of a training dataset.

    ``load_datasets`` fills the in-memory cache of ``train`` when it builds it, so the cold pass
    is one pass of ``uncached``, the same pipeline built with ``data.cache=false``.
    """
    per_pass = train_examples // batch
    start = time.perf_counter()
    for _ in uncached.take(per_pass):  # decode included
        pass
    cold = _images_per_sec(per_pass * batch, time.perf_counter() - start)
    iterator = iter(train.repeat())
    next(iterator)  # starts the pipeline's threads and fills the shuffle buffer
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        warm.append(_images_per_sec(batches * batch, time.perf_counter() - start))
    return cold, warm


def measure_training(
    alpha: float,
    resolution: int,
    num_classes: int,
    images: Any,
    labels: Any,
    steps: int,
    repeats: int,
) -> list[float]:
    """Training images/s per repeat of ``train_on_batch`` on one fixed batch."""
    import keras
    import tensorflow as tf

    from mnv1.model import build_mobilenet_v1

    keras.utils.clear_session()
    model = build_mobilenet_v1(alpha=alpha, resolution=resolution, num_classes=num_classes)
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-3),
        loss="sparse_categorical_crossentropy",
        # XLA only where a GPU is: on CPU it made training slower here (see TrainConfig).
        jit_compile=bool(tf.config.list_physical_devices("GPU")),
    )
    for _ in range(2):  # trace and build the train function outside the timing
        model.train_on_batch(images, labels)
    batch = int(images.shape[0])
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            model.train_on_batch(images, labels)
        rates.append(_images_per_sec(steps * batch, time.perf_counter() - start))
    return rates


def _step_clock() -> tuple[Any, list[float]]:
    """A Keras callback that appends the end time of every training step to the list."""
    import keras

    marks: list[float] = []

    class StepClock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            marks.append(time.perf_counter())

    return StepClock(), marks


def steady_step_seconds(marks: list[float]) -> float:
    """Seconds per step from the end of the first step to the end of the last."""
    if len(marks) < 2:
        raise ValueError(f"a fit ran {len(marks)} step(s); steady timing needs at least 2")
    return (marks[-1] - marks[0]) / (len(marks) - 1)


def measure_input_wait(
    alpha: float,
    resolution: int,
    train: Any,
    num_classes: int,
    steps: int,
    repeats: int,
) -> tuple[list[float], list[float]]:
    """Steady seconds per step of ``fit`` on the real pipeline and on one cached batch of it,
    per repeat, alternated (one warm-up fit of each first, untimed)."""
    import keras
    import tensorflow as tf

    from mnv1.model import build_mobilenet_v1
    from mnv1.training.run import training_data

    if steps < 3:
        raise ValueError(f"fit steps must be at least 3 (2 timed steps), got {steps}")
    keras.utils.clear_session()
    model = build_mobilenet_v1(alpha=alpha, resolution=resolution, num_classes=num_classes)
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-3),
        loss=keras.losses.CategoricalCrossentropy(),
        jit_compile=bool(tf.config.list_physical_devices("GPU")),  # as in measure_training
    )
    streams = {
        "real": training_data(train, num_classes),
        "cached": training_data(train.take(1).cache(), num_classes),
    }

    def fit(kind: str) -> float:
        clock, marks = _step_clock()
        model.fit(
            streams[kind],
            steps_per_epoch=steps,
            epochs=1,
            callbacks=[clock],
            verbose=0,
            shuffle=False,  # a tf.data stream: the data layer shuffles, Keras cannot
        )
        return steady_step_seconds(marks)

    fit("cached")  # traces the train function
    fit("real")
    real: list[float] = []
    cached: list[float] = []
    for repeat in range(repeats):
        order = ("real", "cached") if repeat % 2 == 0 else ("cached", "real")
        for kind in order:
            (real if kind == "real" else cached).append(fit(kind))
    return real, cached


def wait_share(real_step: float, cached_step: float) -> float:
    """Share of the real step time not explained by the step on a batch already in memory."""
    return max(0.0, 1.0 - cached_step / real_step)


def benchmark(args: argparse.Namespace) -> tuple[list[RhoResult], dict[str, Any]]:
    from mnv1.data.pipeline import load_datasets

    cfg = data_config(args)
    results = []
    fingerprint = None
    for resolution in args.resolutions:
        data = load_datasets(cfg, resolution, args.batch_size, seed=0)
        uncached = load_datasets(replace(cfg, cache=False), resolution, args.batch_size, seed=0)
        fingerprint = data.fingerprint
        cold, warm = measure_pipeline(
            data.train,
            uncached.train,
            data.train_examples,
            args.batch_size,
            args.batches,
            args.repeats,
        )
        images, labels = next(iter(data.train))
        train = measure_training(
            args.alpha,
            resolution,
            data.num_classes,
            images,
            labels,
            args.train_steps,
            args.repeats,
        )
        fit_real, fit_cached = measure_input_wait(
            args.alpha, resolution, data.train, data.num_classes, args.fit_steps, args.repeats
        )
        results.append(
            RhoResult(
                resolution=resolution,
                pipeline_images_per_sec=median(warm),
                pipeline_cold_images_per_sec=cold,
                train_images_per_sec=median(train),
                ratio=median(warm) / median(train),
                input_wait_share=wait_share(median(fit_real), median(fit_cached)),
                fit_step_seconds=median(fit_real),
                fit_step_seconds_cached=median(fit_cached),
                pipeline_repeats=warm,
                train_repeats=train,
                fit_repeats=fit_real,
                fit_cached_repeats=fit_cached,
            )
        )
    meta = {
        "dataset": f"{fingerprint.name} {fingerprint.version}" if fingerprint else cfg.name,
        "alpha": args.alpha,
        "batch_size": args.batch_size,
        "augment": cfg.augment,
        "repeats": args.repeats,
        "pipeline batches per repeat": args.batches,
        "train steps per repeat": args.train_steps,
        "fit steps per repeat (input wait)": args.fit_steps,
    }
    return results, meta


def run(args: argparse.Namespace) -> int:
    resolve_sizes(args)
    if args.fit_steps < 3:
        raise SystemExit(f"--fit-steps must be at least 3 (2 timed steps), got {args.fit_steps}")
    # TFDS prints progress to stdout while preparing; stdout is for the report (JSON must parse).
    with contextlib.redirect_stdout(sys.stderr):
        results, meta = benchmark(args)
    columns = {
        "resolution": "ρ",
        "pipeline_images_per_sec": "pipeline img/s (warm, median)",
        "pipeline_cold_images_per_sec": "pipeline img/s (first pass)",
        "train_images_per_sec": f"train img/s α={args.alpha:g} (median)",
        "ratio": "pipeline / train",
        "input_wait_share": "input wait share (fit)",
    }
    print(render("data", columns, [asdict(r) for r in results], meta, args.format))
    return 0
