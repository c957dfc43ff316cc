"""A trained cell's deploy-side numbers: both flatbuffers, int8 top-1 and batch-1 CPU latency.

Called once after the cell's final evaluation (``mnv1.training.run``). Everything goes through
the run log: the flatbuffers as artifacts, sizes, int8 top-1 and latencies as metrics, the CPU
and the runtime as tags. A model the converter refuses raises ``ExportError`` with the
converter's message, which fails this cell only (the sweep goes on with the others).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from mnv1.config import ExportConfig, check
from mnv1.export.convert import to_flatbuffers
from mnv1.export.runtime import Model, all_threads, cpu_model, runtime_version, time_flatbuffer
from mnv1.runlog import RunLog
from mnv1.tracking import schema


def check_export_config(cfg: ExportConfig) -> None:
    """The rule table's ``export.*`` rules, at run time (the up-front validator runs them too)."""
    check(cfg, "export")


def thread_counts(cfg: ExportConfig) -> list[int]:
    """1 thread, and ``export.threads`` (every core when null) when that is more."""
    many = cfg.threads if cfg.threads is not None else all_threads()
    return sorted({1, int(many)})


def labelled_images(val: Any) -> tuple[list[np.ndarray], np.ndarray]:
    """Every validation image and its label, in order (the split ``val_top1`` counted)."""
    images: list[np.ndarray] = []
    labels: list[int] = []
    for batch_images, batch_labels in val:
        images.extend(np.asarray(batch_images, np.float32))
        labels.extend(int(v) for v in np.asarray(batch_labels).reshape(-1))
    return images, np.asarray(labels, np.int64)


def representative_batches(train: Any, batches: int) -> Iterable[np.ndarray]:
    """The first ``batches`` training batches' images (the training split, not validation)."""
    return [np.asarray(images, np.float32) for images, _ in train.take(batches)]


def export_cell(
    model: Any,
    train: Any,
    val: Any,
    cfg: ExportConfig,
    run_log: RunLog,
    val_top1: float,
    ready: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Export, evaluate and time ``model``; log everything and return the metrics logged.

    ``ready`` is called once the flatbuffers exist, before anything is logged or timed: it waits
    for the LoggedModel they attach to, which the run writes meanwhile on another thread
    (``mnv1.training.run.log_end``), so the latencies are timed with nothing else running. The
    wait is not counted in ``export_seconds``.
    """
    check_export_config(cfg)
    started = time.perf_counter()
    flat = to_flatbuffers(model, representative_batches(train, cfg.representative_batches))
    waited = 0.0
    if ready is not None:
        waiting = time.perf_counter()
        ready()
        waited = time.perf_counter() - waiting
    run_log.log_file(schema.ARTIFACT_TFLITE_FP32, flat.fp32)
    run_log.log_file(schema.ARTIFACT_TFLITE_INT8, flat.int8)

    images, labels = labelled_images(val)
    predicted = Model(flat.int8, threads=all_threads()).predict(images)
    top1_int8 = float(np.mean(predicted == labels)) if len(labels) else float("nan")
    metrics = {
        schema.METRIC_TFLITE_BYTES: float(len(flat.fp32)),
        schema.METRIC_TFLITE_INT8_BYTES: float(len(flat.int8)),
        schema.METRIC_VAL_TOP1_INT8: top1_int8,
        schema.METRIC_INT8_TOP1_DROP: val_top1 - top1_int8,
    }
    threads = thread_counts(cfg)
    for kind, flatbuffer in (("fp32", flat.fp32), ("int8", flat.int8)):
        for count in threads:
            latency = time_flatbuffer(flatbuffer, count, cfg.warmup, cfg.repeats)
            metrics[schema.latency_metric(kind, count)] = latency.median_ms
            metrics[schema.latency_metric(kind, count, p90=True)] = latency.p90_ms
    metrics[schema.METRIC_EXPORT_SECONDS] = time.perf_counter() - started - waited
    run_log.log_metrics(metrics)
    run_log.set_tags(
        {
            schema.TAG_EXPORT_CPU: cpu_model(),
            schema.TAG_EXPORT_RUNTIME: runtime_version(),
            schema.TAG_EXPORT_THREADS: ",".join(str(t) for t in threads),
        }
    )
    return metrics
