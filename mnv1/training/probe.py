"""The plan's probe process: ``python -m mnv1.training.probe --in REQUEST.json --out RESULT.json``.

Started like a cell's worker (a fresh interpreter, ``bootstrap`` first, the same strategy, model,
optimizer and compile as ``run_training``), it times what a cell pays besides its training
budget, and a few training steps, on a tiny in-memory batch of random images: no dataset is
opened, no run is logged, nothing is written outside a temporary directory.

The request names the configs of the grid's shapes (``mnv1.sweep.plan.shape_of``); the probe
counts the mult-adds of ``count`` of them and times one: ``time`` is a shape, or ``"max"`` for the
one with the most work per step (mult-adds × batch), found from those counts. The parent side,
with its cache, is ``mnv1.sweep.probe``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mnv1.config import from_dict
from mnv1.worker_contract import ENV_SPAWN_TIME

TIMED_STEPS = 3
EVAL_BATCHES = 4


def _since_spawn() -> float:
    try:
        return time.time() - float(os.environ[ENV_SPAWN_TIME])
    except (KeyError, ValueError):
        return 0.0


def probe(request: dict[str, Any]) -> dict[str, Any]:
    configs = {shape: from_dict(c) for shape, c in request["configs"].items()}
    classes: dict[str, int] = request["classes"]
    first = next(iter(configs.values()))

    from mnv1.training.bootstrap import bootstrap

    bootstrap(first.distribute, first.train)
    import keras
    import numpy as np
    import tensorflow as tf

    from mnv1.costs import costs_for
    from mnv1.training.checkpoint import CheckpointState, CheckpointStore
    from mnv1.training.recipe import resolve_jit
    from mnv1.training.run import _compiled_model, training_data, validation_data
    from mnv1.training.strategy import check_global_batch, make_strategy

    counting = time.perf_counter()
    mult_adds = {
        shape: costs_for(
            configs[shape].model.alpha,
            configs[shape].model.resolution,
            classes[shape],
            configs[shape].model.variant,
        ).mult_adds
        for shape in request["count"]
    }
    mult_adds.update(request.get("known", {}))
    counting_s = time.perf_counter() - counting
    shape = request["time"]
    if shape == "max":
        shape = max(mult_adds, key=lambda s: mult_adds[s] * configs[s].train.batch_size)
    cfg = configs[shape]
    batch = cfg.train.batch_size
    num_classes = classes[shape]

    strategy = make_strategy(cfg.distribute)
    check_global_batch(batch, int(strategy.num_replicas_in_sync))
    keras.utils.clear_session()
    devices = list(strategy.extended.worker_devices)
    jit = resolve_jit(cfg.train, on_gpu=any("GPU" in d.upper() for d in devices))
    model, _ = _compiled_model(cfg, strategy, num_classes, TIMED_STEPS + 1, 0.99, jit)
    # Counting the grid's mult-adds is the probe's own work, not a cell's start-up.
    startup_s = _since_spawn() - counting_s

    rng = np.random.default_rng(0)
    size = cfg.model.resolution
    x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    y = rng.integers(0, num_classes, (batch,)).astype(np.int32)
    batch_ds = tf.data.Dataset.from_tensors((x, y))

    ends: list[float] = []

    class StepClock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            ends.append(time.perf_counter())

    began = time.perf_counter()
    model.fit(
        training_data(batch_ds, num_classes),
        epochs=1,
        steps_per_epoch=TIMED_STEPS + 1,
        callbacks=[StepClock()],
        verbose=0,
        shuffle=False,
    )
    trace_s = ends[0] - began
    step_s = statistics.median(b - a for a, b in itertools.pairwise(ends))

    def evaluate(batches: int) -> float:
        val = validation_data(batch_ds.repeat(batches), batches * batch, batch, num_classes)
        start = time.perf_counter()
        model.evaluate(val, verbose=0)
        return time.perf_counter() - start

    first_eval = evaluate(1)
    eval_batch_s = evaluate(EVAL_BATCHES) / EVAL_BATCHES
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        CheckpointStore(Path(tmp)).save(model, CheckpointState(1, 0, TIMED_STEPS + 1))
        checkpoint_s = time.perf_counter() - start

    start = time.perf_counter()
    import mnv1.tracking.runlog  # noqa: F401  (every cell's worker imports it: mlflow)

    tracking_import_s = time.perf_counter() - start
    export = _probe_export(model, x, cfg.export) if cfg.export.enabled else {}
    return {
        "mult_adds": mult_adds,
        "point": {
            "shape": shape,
            "mult_adds": mult_adds[shape],
            "batch": batch,
            "startup_s": startup_s,
            "tracking_import_s": tracking_import_s,
            "trace_s": trace_s,
            "step_s": step_s,
            "eval_trace_s": max(0.0, first_eval - eval_batch_s),
            "eval_batch_s": eval_batch_s,
            "checkpoint_s": checkpoint_s,
            **export,
        },
    }


def _probe_export(model: Any, images: Any, cfg: Any) -> dict[str, float]:
    """What ``mnv1.export.cell`` costs this shape: both conversions (calibrated on the probe's
    batch, as many times as the cell's representative batches), and one single-image run of
    each flatbuffer (median of a few, after one warm-up)."""
    from mnv1.export.convert import to_flatbuffers
    from mnv1.export.runtime import time_flatbuffer

    start = time.perf_counter()
    flat = to_flatbuffers(model, [images] * cfg.representative_batches)
    convert_s = time.perf_counter() - start
    return {
        "export_convert_s": convert_s,
        "export_fp32_run_s": time_flatbuffer(flat.fp32, 1, 1, 5).median_ms / 1000.0,
        "export_int8_run_s": time_flatbuffer(flat.int8, 1, 1, 5).median_ms / 1000.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mnv1.training.probe")
    parser.add_argument("--in", dest="request", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    result = probe(json.loads(args.request.read_text()))
    args.out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    from mnv1.training.worker import exit_now

    sys.stdout.flush()
    exit_now(main())
