"""The plan's probe process: ``python -m mnv1.training.probe --in REQUEST.json --out RESULT.json``.

Started like a cell's worker (a fresh interpreter, ``bootstrap`` first, then the same steps as
``run_training``: ``start_strategy``, ``plan_run`` and ``build_model``), it times what a cell
pays besides its training budget, and a few training steps, on a tiny in-memory batch of random
images: no dataset is opened, no run is logged, nothing is written outside a temporary directory.

The request (``ProbeRequest``, as JSON) names the configs of the grid's shapes
(``mnv1.sweep.plan.shape_of``); the probe counts the mult-adds of ``count`` of them and times
one: ``time`` is a shape, or ``"max"`` for the one with the most work per step (mult-adds ×
batch), found from those counts. The answer is a ``ProbeResult``. The parent side, with its
cache, is ``mnv1.sweep.probe``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnv1.config import RunConfig, from_dict
from mnv1.worker_contract import ENV_SPAWN_TIME

if TYPE_CHECKING:
    from mnv1.training.plan import RunPlan

TIMED_STEPS = 3
EVAL_BATCHES = 4


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
        )


@dataclass(frozen=True)
class ProbeTimings:
    """Seconds measured for the timed shape in a worker-like process (the sweep's plan extends
    it as ``mnv1.sweep.plan.ProbePoint`` with what it derives from them)."""

    shape: str
    mult_adds: int
    batch: int
    startup_s: float
    """Spawn to a compiled model: interpreter, TensorFlow import, bootstrap, model build."""
    tracking_import_s: float
    """Importing the MLflow run log, which every cell's worker does."""
    trace_s: float
    """The first training step (tracing, graph building)."""
    step_s: float
    """One steady training step (median of the timed ones)."""
    eval_trace_s: float
    eval_batch_s: float
    checkpoint_s: float
    export_convert_s: float = 0.0
    """Both LiteRT conversions (float32, int8 with calibration); 0 when export is off."""
    export_fp32_run_s: float = 0.0
    """One single-image run of the float32 flatbuffer, 1 thread."""
    export_int8_run_s: float = 0.0


@dataclass(frozen=True)
class ProbeResult:
    """The counted mult-adds of every shape asked (and known), and the timed shape's seconds."""

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


def _since_spawn() -> float:
    try:
        return time.time() - float(os.environ[ENV_SPAWN_TIME])
    except (KeyError, ValueError):
        return 0.0


def probe_config(cfg: RunConfig) -> RunConfig:
    """The timed shape's config as the probe plans it: epochs of the timed steps (and one for
    tracing), the cell's epoch count kept so its warm-up fits the schedule as it does the cell's;
    the probe trains the first of them."""
    train = dataclasses.replace(cfg.train, steps_per_epoch=TIMED_STEPS + 1)
    return dataclasses.replace(cfg, train=train)


def probe(request: ProbeRequest) -> ProbeResult:
    """Answer one request in this fresh process: bootstrap as a cell's worker does (before
    TensorFlow is imported), count the mult-adds, then time the chosen shape."""
    first = next(iter(request.configs.values()))

    from mnv1.training.bootstrap import bootstrap

    bootstrap(first.distribute, first.train)

    counting = time.perf_counter()
    mult_adds = _count(request)
    counting_s = time.perf_counter() - counting
    shape = request.time
    if shape == "max":
        configs = request.configs
        shape = max(mult_adds, key=lambda s: mult_adds[s] * configs[s].train.batch_size)
    return ProbeResult(mult_adds, _time_shape(request, shape, mult_adds[shape], counting_s))


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


def _time_shape(
    request: ProbeRequest, shape: str, mult_adds: int, counting_s: float
) -> ProbeTimings:
    """Build the shape's model the way its cell does (the same plan and build steps), then time
    its first and steady training steps, evaluation, a checkpoint and the tracking import."""
    import numpy as np
    import tensorflow as tf

    from mnv1.training.plan import plan_run
    from mnv1.training.run import (
        build_model,
        platform_of,
        start_strategy,
        training_data,
        validation_data,
    )

    cfg = probe_config(request.configs[shape])
    batch = cfg.train.batch_size
    num_classes = request.classes[shape]
    strategy = start_strategy(cfg)
    plan = plan_run(cfg, platform_of(strategy), batch * (TIMED_STEPS + 1), num_classes)
    model = build_model(plan, strategy).model
    # Counting the grid's mult-adds is the probe's own work, not a cell's start-up.
    startup_s = _since_spawn() - counting_s

    rng = np.random.default_rng(0)
    size = cfg.model.resolution
    x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
    y = rng.integers(0, num_classes, (batch,)).astype(np.int32)
    batch_ds = tf.data.Dataset.from_tensors((x, y))

    trace_s, step_s = _time_steps(model, training_data(batch_ds, num_classes), plan)

    def evaluate(batches: int) -> float:
        val = validation_data(batch_ds.repeat(batches), batches * batch, batch, num_classes)
        start = time.perf_counter()
        model.evaluate(val, verbose=0)
        return time.perf_counter() - start

    first_eval = evaluate(1)
    eval_batch_s = evaluate(EVAL_BATCHES) / EVAL_BATCHES
    checkpoint_s = _time_checkpoint(model)
    tracking_import_s = _time_tracking_import()
    export = _probe_export(model, x, cfg.export) if cfg.export.enabled else {}
    return ProbeTimings(
        shape=shape,
        mult_adds=mult_adds,
        batch=batch,
        startup_s=startup_s,
        tracking_import_s=tracking_import_s,
        trace_s=trace_s,
        step_s=step_s,
        eval_trace_s=max(0.0, first_eval - eval_batch_s),
        eval_batch_s=eval_batch_s,
        checkpoint_s=checkpoint_s,
        **export,
    )


def _time_steps(model: Any, train_data: Any, plan: RunPlan) -> tuple[float, float]:
    """The first training step (tracing included) and the median of the steady ones after it."""
    import keras

    ends: list[float] = []

    class StepClock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            ends.append(time.perf_counter())

    began = time.perf_counter()
    model.fit(
        train_data,
        epochs=1,
        steps_per_epoch=plan.steps_per_epoch,
        callbacks=[StepClock()],
        verbose=0,
        shuffle=False,
    )
    return ends[0] - began, statistics.median(b - a for a, b in itertools.pairwise(ends))


def _time_checkpoint(model: Any) -> float:
    from mnv1.training.checkpoint import CheckpointState, CheckpointStore

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        CheckpointStore(Path(tmp)).save(model, CheckpointState(1, 0, TIMED_STEPS + 1))
        return time.perf_counter() - start


def _time_tracking_import() -> float:
    start = time.perf_counter()
    import mnv1.tracking.runlog  # noqa: F401  (every cell's worker imports it: mlflow)

    return time.perf_counter() - start


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
    result = probe(ProbeRequest.from_dict(json.loads(args.request.read_text())))
    args.out.write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    from mnv1.training.worker import exit_now

    sys.stdout.flush()
    exit_now(main())
