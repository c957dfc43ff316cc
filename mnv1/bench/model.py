"""Model throughput: our builder against ``keras.applications.MobileNet``, in one process.

Both models are timed on the same synthetic batch, alternated A B A B so that drift in the machine
(another process, thermal state, a noisy neighbour) hits both equally, and each figure is the
median over the repeats. The achieved GFLOP/s of a training step (3 × 2 × mult-adds per image:
forward, and a backward pass costing about twice the forward) is set against a large float32
matmul measured in the same process, the practical ceiling of the machine.

Pure Keras 3 (``keras.ops``), so the same code times the model on the TensorFlow, JAX or PyTorch
backend; the GPU script (``mnv1.bench.gpu``) reuses it.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mnv1.bench import render
from mnv1.config import PAPER_ALPHAS, PAPER_RESOLUTIONS

if TYPE_CHECKING:
    import keras

# Keras (and with it TensorFlow) is imported inside the functions that time something, so
# `mnv1-bench --help` and the other subcommands do not pay seconds of imports for this one.

HELP = "training and inference images/s of our model vs keras.applications.MobileNet"

# Training FLOPs per image ≈ 3 × forward (the backward pass computes two products per forward
# one: gradients for the activations and for the weights); 2 FLOPs per multiply-add.
TRAIN_FLOPS_PER_MULT_ADD = 6


@dataclass
class Throughput:
    """Images per second of one model, median over repeats, plus the spread."""

    train_ips: float
    infer_ips: float
    train_runs: list[float]
    infer_runs: list[float]


@dataclass
class ModelBench:
    alpha: float
    resolution: int
    batch: int
    repeats: int
    backend: str
    mult_adds: int
    ours: Throughput
    keras_ref: Throughput
    train_ratio: float
    """ours / keras.applications.MobileNet, training images/s (≥ 1.0 means we are no slower)."""
    infer_ratio: float
    train_gflops: float
    matmul_gflops: float
    ceiling_share: float
    """Achieved training GFLOP/s over the measured matmul ceiling."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sync(x: Any) -> float:
    """Force a (possibly asynchronous) backend to finish by pulling one scalar to the host."""
    import keras

    return float(keras.ops.convert_to_numpy(keras.ops.sum(x)))


def matmul_gflops(size: int = 2048, repeats: int = 5, inner: int = 4) -> float:
    """Median GFLOP/s of a ``size × size`` float32 matmul: the machine's practical ceiling."""
    import keras

    rng = np.random.default_rng(0)
    a = keras.ops.convert_to_tensor(rng.standard_normal((size, size), dtype=np.float32))
    b = keras.ops.convert_to_tensor(rng.standard_normal((size, size), dtype=np.float32))
    sync(keras.ops.matmul(a, b))  # warm-up: kernel selection, thread-pool start
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        acc = keras.ops.matmul(a, b)
        for _ in range(inner - 1):
            acc = keras.ops.matmul(a, b)
        sync(acc)
        runs.append(2 * size**3 * inner / (time.perf_counter() - start) / 1e9)
    return statistics.median(runs)


def _keras_reference(alpha: float, resolution: int) -> keras.Model:
    import keras

    return keras.applications.MobileNet(
        input_shape=(resolution, resolution, 3), alpha=alpha, weights=None, classes=1000
    )


def compiled(model: keras.Model, jit_compile: bool | str) -> keras.Model:
    import keras

    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=1e-3),
        loss="sparse_categorical_crossentropy",
        jit_compile=jit_compile,
    )
    return model


def timer(step: Callable[[], Any], steps: int, batch: int) -> Callable[[], float]:
    # train_on_batch and predict_on_batch return host values (a loss, a numpy array), so each
    # call has finished on the device by the time it returns: no extra sync is needed.
    def run() -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return steps * batch / (time.perf_counter() - start)

    return run


def step_timers(model: keras.Model, x: Any, y: Any, steps: int) -> dict[str, Callable[[], float]]:
    """Timers for training and inference steps of one model on one fixed batch."""
    # One untimed step of each builds the graph / compiles the kernels.
    model.train_on_batch(x, y)
    sync(model.predict_on_batch(x))

    def train() -> Any:
        return model.train_on_batch(x, y)

    def infer() -> Any:
        return model.predict_on_batch(x)

    return {"train": timer(train, steps, len(x)), "infer": timer(infer, steps, len(x))}


def bench_model(
    alpha: float = 1.0,
    resolution: int = 224,
    batch: int = 32,
    repeats: int = 5,
    steps: int = 3,
    jit_compile: bool | str = False,
    ceiling: float | None = None,
) -> ModelBench:
    """Time training and inference of ours vs the Keras reference at one (α, ρ, batch)."""
    import keras

    from mnv1.costs import count_costs
    from mnv1.model import build_mobilenet_v1

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, resolution, resolution, 3)).astype(np.float32)
    y = rng.integers(0, 1000, (batch,)).astype(np.int32)

    ours = compiled(build_mobilenet_v1(alpha, resolution, 1000), jit_compile)
    ref = compiled(_keras_reference(alpha, resolution), jit_compile)
    timers = {"ours": step_timers(ours, x, y, steps), "ref": step_timers(ref, x, y, steps)}

    runs: dict[str, dict[str, list[float]]] = {
        n: {"train": [], "infer": []} for n in ("ours", "ref")
    }
    for _ in range(repeats):  # A B A B: both models see the same conditions
        for name in ("ours", "ref"):
            for kind in ("train", "infer"):
                runs[name][kind].append(timers[name][kind]())

    def throughput(name: str) -> Throughput:
        return Throughput(
            train_ips=statistics.median(runs[name]["train"]),
            infer_ips=statistics.median(runs[name]["infer"]),
            train_runs=runs[name]["train"],
            infer_runs=runs[name]["infer"],
        )

    mine, theirs = throughput("ours"), throughput("ref")
    mult_adds = count_costs(ours).mult_adds
    train_gflops = mine.train_ips * TRAIN_FLOPS_PER_MULT_ADD * mult_adds / 1e9
    ceiling = ceiling if ceiling is not None else matmul_gflops()
    return ModelBench(
        alpha=alpha,
        resolution=resolution,
        batch=batch,
        repeats=repeats,
        backend=keras.backend.backend(),
        mult_adds=mult_adds,
        ours=mine,
        keras_ref=theirs,
        train_ratio=mine.train_ips / theirs.train_ips,
        infer_ratio=mine.infer_ips / theirs.infer_ips,
        train_gflops=train_gflops,
        matmul_gflops=ceiling,
        ceiling_share=train_gflops / ceiling,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--alphas", type=float, nargs="+", default=list(PAPER_ALPHAS))
    parser.add_argument("--resolutions", type=int, nargs="+", default=list(PAPER_RESOLUTIONS))
    parser.add_argument("--batch-size", type=int, default=32, help="batch per step (default 32)")
    parser.add_argument("--repeats", type=int, default=5, help="A B repeats; medians reported")
    parser.add_argument("--steps", type=int, default=3, help="steps per timed repeat")
    parser.add_argument(
        "--tiny", action="store_true", help="seconds-long smoke run (α 0.25, ρ 32, batch 4)"
    )


def run(args: argparse.Namespace) -> int:
    import keras

    if args.tiny:
        args.alphas, args.resolutions, args.batch_size = [0.25], [32], 4
        args.repeats, args.steps = 2, 1
    ceiling = matmul_gflops(size=512 if args.tiny else 2048)
    results = [
        bench_model(a, r, args.batch_size, args.repeats, args.steps, ceiling=ceiling)
        for a in args.alphas
        for r in args.resolutions
    ]
    columns = {
        "alpha": "α",
        "resolution": "ρ",
        "ours_train": "ours train img/s",
        "keras_train": "Keras train img/s",
        "train_ratio": "train ratio",
        "ours_infer": "ours infer img/s",
        "keras_infer": "Keras infer img/s",
        "infer_ratio": "infer ratio",
        "train_gflops": "train GFLOP/s",
        "ceiling_share": "share of matmul ceiling",
    }
    rows = [
        {
            "alpha": r.alpha,
            "resolution": r.resolution,
            "ours_train": r.ours.train_ips,
            "keras_train": r.keras_ref.train_ips,
            "train_ratio": r.train_ratio,
            "ours_infer": r.ours.infer_ips,
            "keras_infer": r.keras_ref.infer_ips,
            "infer_ratio": r.infer_ratio,
            "train_gflops": r.train_gflops,
            "ceiling_share": r.ceiling_share,
            "runs": r.as_dict(),
        }
        for r in results
    ]
    meta = {
        "backend": keras.backend.backend(),
        "batch": args.batch_size,
        "repeats (A B alternated)": args.repeats,
        "steps per repeat": args.steps,
        "float32 matmul ceiling GFLOP/s": round(ceiling, 1),
        "training FLOPs per image": "6 × mult-adds",
    }
    print(render("model", columns, rows, meta, args.format))
    return 0
