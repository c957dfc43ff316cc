"""Time MobileNetV1 training on one GPU: our builder beside its peers, in one run, on one device.

What is timed is the model, not the host: each implementation trains on one random batch that
was put on the device once (no host-to-device copy inside the clock), at batch 256 by default.
Compilation (XLA, ``torch.compile``, tracing) is the first step and is reported apart; the
figure is training images/s over the timed steps after a warm-up, median over repeats.

Implementations (``--impls``), each where it imports:

* ``ours``: ``mnv1.model.build_mobilenet_v1`` (pure Keras 3) on the current Keras backend;
* ``keras_app``: ``keras.applications.MobileNet`` (no weights) on the same backend;
* ``timm_eager`` and ``timm_compile``: timm's ``mobilenetv1_100`` on PyTorch, channels-last,
  bf16 autocast for ``mixed_bfloat16``, eager and under ``torch.compile``. Other widths use
  timm's MobileNetV1 generator (``timm.models.efficientnet``) with its channel multiplier
  (timm rounds channels to multiples of 8, so at α < 1 its layers are a little wider than
  ``int(channels × α)``);
* ``--peer NAME=module:function``: any other implementation (``function(alpha, resolution,
  precision, batch, classes)`` returns an object with ``step()`` and ``sync()``).

An implementation that does not import (no torch, no timm) is reported as unavailable with the
reason, never silently left out. The configurations run in order of interest, so a short run
covers the headline cells first: bf16 at 1.0-224, 0.5-160, 0.25-128 for every implementation,
then float32 at the same cells, then the other cells; whatever the time budget (default 6 min)
leaves out is listed as skipped. All models use RMSprop and softmax cross-entropy over 1000
classes. A large matmul in each precision, timed in the same run, gives the device's ceiling.

Usage on the device (see BENCHMARKS.md):
    KERAS_BACKEND=jax python -m mnv1.bench.gpu --out gpu.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from mnv1 import tables
from mnv1.bench import parse_cell

HEADLINE_CELLS: tuple[tuple[float, int], ...] = ((1.0, 224), (0.5, 160), (0.25, 128))
GRID_CELLS: tuple[tuple[float, int], ...] = tuple(
    (a, r) for a in (1.0, 0.75, 0.5, 0.25) for r in (224, 192, 160, 128)
)
PRECISIONS: tuple[str, ...] = ("mixed_bfloat16", "float32")
IMPLS: tuple[str, ...] = ("ours", "keras_app", "timm_eager", "timm_compile")
CLASSES = 1000
# 6 × mult-adds FLOPs per trained image: forward, and a backward pass costing about twice that.
TRAIN_FLOPS_PER_MULT_ADD = 6


class Trainer(Protocol):
    def step(self) -> None:
        """One training step on the resident batch (may return before the device finishes)."""

    def sync(self) -> None:
        """Wait until every step issued so far has finished on the device."""


Factory = Callable[[float, int, str, int, int], Trainer]


@dataclass
class GpuRow:
    impl: str
    alpha: float
    resolution: int
    precision: str
    batch: int
    train_ips: float
    compile_s: float
    """The first step (tracing, compilation, autotuning), apart from the timed steps."""
    step_ms: float
    mult_adds: int
    """Ours, in the paper's convention, for the TFLOP/s column of every implementation."""
    train_tflops: float


def schedule(
    cells: list[tuple[float, int]], precisions: list[str], impls: list[str]
) -> list[tuple[str, float, int, str]]:
    """(impl, alpha, resolution, precision) in order of interest: the headline cells first,
    precision by precision, every implementation of a configuration one after another (so a
    budget that stops early never leaves one implementation of a row behind its peers)."""
    headline = [c for c in HEADLINE_CELLS if c in cells]
    rest = [c for c in cells if c not in headline]
    order = []
    for group in (headline, rest):
        for precision in precisions:
            for alpha, resolution in group:
                order += [(impl, alpha, resolution, precision) for impl in impls]
    return order


# --- Keras implementations (the current backend) ------------------------------------------


def _resident(array: Any) -> Any:
    """``array`` on the backend's default device, once, outside any clock."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.device_put(array)
    if backend == "torch":
        import torch

        return torch.as_tensor(array, device="cuda" if torch.cuda.is_available() else "cpu")
    import tensorflow as tf

    device = "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"
    with tf.device(device):
        return tf.identity(tf.convert_to_tensor(array))


class KerasTrainer:
    def __init__(self, model: Any, batch: int, resolution: int, jit: bool | str) -> None:
        import keras
        import numpy as np

        rng = np.random.default_rng(0)
        self.x = _resident(rng.uniform(-1, 1, (batch, resolution, resolution, 3)).astype("float32"))
        self.y = _resident(rng.integers(0, CLASSES, (batch,)).astype("int32"))
        model.compile(
            optimizer=keras.optimizers.RMSprop(learning_rate=1e-3, momentum=0.9, epsilon=1.0),
            loss="sparse_categorical_crossentropy",
            jit_compile=jit,
        )
        self.model = model

    def step(self) -> None:
        # Returns the loss to the host: one scalar per step, as any training loop that logs it.
        self.model.train_on_batch(self.x, self.y)

    def sync(self) -> None:
        pass  # train_on_batch has already waited for its step


def keras_factory(which: str, jit: bool | str) -> Factory:
    def make(alpha: float, resolution: int, precision: str, batch: int, classes: int) -> Trainer:
        import keras

        keras.utils.clear_session()
        keras.mixed_precision.set_dtype_policy(precision)
        if which == "ours":
            from mnv1.model import build_mobilenet_v1

            model = build_mobilenet_v1(alpha, resolution, classes)
        else:
            model = keras.applications.MobileNet(
                input_shape=(resolution, resolution, 3), alpha=alpha, weights=None, classes=classes
            )
        return KerasTrainer(model, batch, resolution, jit)

    return make


# --- timm on PyTorch ------------------------------------------------------------------------


class TorchTrainer:
    def __init__(self, model: Any, batch: int, resolution: int, precision: str) -> None:
        import torch

        self.torch = torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        channels_last = torch.channels_last
        self.model = model.to(self.device, memory_format=channels_last).train()
        self.x = torch.randn(batch, 3, resolution, resolution, device=self.device).to(
            memory_format=channels_last
        )
        self.y = torch.randint(0, CLASSES, (batch,), device=self.device)
        self.optimizer = torch.optim.RMSprop(
            self.model.parameters(), lr=1e-3, momentum=0.9, eps=1.0
        )
        self.loss = torch.nn.CrossEntropyLoss()
        self.bf16 = precision == "mixed_bfloat16"

    def step(self) -> None:
        torch = self.torch
        with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16):
            loss = self.loss(self.model(self.x), self.y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def sync(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()


def timm_factory(compiled: bool) -> Factory:
    import timm  # ImportError: the implementation is reported unavailable
    import torch

    def make(alpha: float, resolution: int, precision: str, batch: int, classes: int) -> Trainer:
        if alpha == 1.0:
            model = timm.create_model("mobilenetv1_100", pretrained=False, num_classes=classes)
        else:
            # timm registers MobileNetV1 at widths 1.0 and 1.25 only; its generator takes the
            # channel multiplier (a private function: a timm without it fails this row only).
            from timm.models import efficientnet

            model = efficientnet._gen_mobilenet_v1(
                "mobilenetv1_100", alpha, pretrained=False, num_classes=classes
            )
        trainer = TorchTrainer(model, batch, resolution, precision)
        if compiled:
            trainer.model = torch.compile(trainer.model)
        return trainer

    return make


def _load_peer(spec: str) -> tuple[str, Factory]:
    name, sep, target = spec.partition("=")
    module, colon, function = target.partition(":")
    if not sep or not colon or not name:
        raise argparse.ArgumentTypeError(f"--peer takes NAME=module:function, got {spec!r}")

    def make(*args: Any) -> Trainer:
        factory: Factory = getattr(importlib.import_module(module), function)
        return factory(*args)

    return name, make


def factories(args: argparse.Namespace) -> tuple[dict[str, Factory], dict[str, str]]:
    """The implementations asked for, and those unavailable with the reason."""
    found: dict[str, Factory] = {}
    unavailable: dict[str, str] = {}
    for impl in args.impls:
        try:
            if impl in ("ours", "keras_app"):
                found[impl] = keras_factory(impl, args.jit)
            elif impl in ("timm_eager", "timm_compile"):
                found[impl] = timm_factory(compiled=impl == "timm_compile")
            else:
                raise ValueError(f"unknown implementation {impl!r} (known: {', '.join(IMPLS)})")
        except ImportError as exc:
            unavailable[impl] = f"{type(exc).__name__}: {exc}"
    for spec in args.peer:
        name, make = _load_peer(spec)
        found[name] = make
    return found, unavailable


# --- timing ---------------------------------------------------------------------------------


def time_trainer(trainer: Trainer, steps: int, repeats: int, warmup: int) -> tuple[float, float]:
    """(seconds of the first step, median seconds per step over ``repeats`` × ``steps``)."""
    start = time.perf_counter()
    trainer.step()
    trainer.sync()
    compile_s = time.perf_counter() - start
    for _ in range(warmup):
        trainer.step()
    trainer.sync()
    per_step = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            trainer.step()
        trainer.sync()
        per_step.append((time.perf_counter() - start) / steps)
    return compile_s, statistics.median(per_step)


def matmul_tflops(size: int, precision: str) -> float:
    """A ``size³`` matmul on the current Keras backend: the device's practical ceiling."""
    import keras
    import numpy as np

    dtype = "bfloat16" if precision == "mixed_bfloat16" else "float32"
    rng = np.random.default_rng(0)
    a = keras.ops.cast(_resident(rng.standard_normal((size, size), dtype=np.float32)), dtype)
    b = keras.ops.cast(_resident(rng.standard_normal((size, size), dtype=np.float32)), dtype)

    def run(n: int) -> float:
        start = time.perf_counter()
        acc = a
        for _ in range(n):
            acc = keras.ops.matmul(a, b)
        float(keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.cast(acc[:1, :1], "float32"))))
        return time.perf_counter() - start

    run(1)
    return 2 * size**3 * 8 / run(8) / 1e12


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The backend must be chosen before Keras is imported.
    os.environ.setdefault("KERAS_BACKEND", args.backend)
    import keras

    from mnv1.costs import costs_for

    deadline = time.monotonic() + args.budget_s
    made, unavailable = factories(args)
    rows: list[GpuRow] = []
    skipped: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for impl, alpha, resolution, precision in schedule(args.cells, args.precisions, list(made)):
        where = {"impl": impl, "alpha": alpha, "resolution": resolution, "precision": precision}
        if rows and time.monotonic() > deadline:  # the first configuration always runs
            skipped.append(where)
            continue
        try:
            trainer = made[impl](alpha, resolution, precision, args.batch, CLASSES)
            compile_s, step_s = time_trainer(trainer, args.steps, args.repeats, args.warmup)
        except Exception as exc:  # one implementation failing must not lose the others' rows
            failed.append({**where, "error": f"{type(exc).__name__}: {exc}"})
            print(f"{impl} a={alpha:g} r={resolution} {precision}: FAILED {exc}", flush=True)
            continue
        finally:
            keras.mixed_precision.set_dtype_policy("float32")
        mult_adds = costs_for(alpha, resolution, CLASSES).mult_adds
        ips = args.batch / step_s
        rows.append(
            GpuRow(
                impl=impl,
                alpha=alpha,
                resolution=resolution,
                precision=precision,
                batch=args.batch,
                train_ips=ips,
                compile_s=compile_s,
                step_ms=1000 * step_s,
                mult_adds=mult_adds,
                train_tflops=ips * TRAIN_FLOPS_PER_MULT_ADD * mult_adds / 1e12,
            )
        )
        print(
            f"{impl:>13} a={alpha:g} r={resolution} {precision:>14} train {ips:9.1f} img/s  "
            f"compile {compile_s:5.1f} s",
            flush=True,
        )
    ceilings = {}
    if args.matmul_size:
        for precision in args.precisions:
            ceilings[precision] = matmul_tflops(args.matmul_size, precision)
    return {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "python": platform.python_version(),
        "versions": _versions(),
        "device": _device_name(keras.backend.backend()),
        "date": time.strftime("%Y-%m-%d"),
        "batch": args.batch,
        "matmul_tflops": ceilings,
        "results": [asdict(r) for r in rows],
        "skipped": skipped,
        "failed": failed,
        "unavailable": unavailable,
    }


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for package in ("keras", "jax", "jaxlib", "tensorflow", "torch", "timm"):
        try:
            out[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return out


def _device_name(backend: str) -> str:
    if backend == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"CPU ({os.cpu_count()} cores visible)"
    details = tf.config.experimental.get_device_details(gpus[0])
    return str(details.get("device_name", gpus[0].name))


def markdown(report: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    lines = [
        f"{report['date']}, {report['device']}, Keras backend {report['backend']} ({versions}), "
        f"batch {report['batch']} resident on the device.",
        "",
    ]
    ours = {
        (r["alpha"], r["resolution"], r["precision"]): r["train_ips"]
        for r in report["results"]
        if r["impl"] == "ours"
    }
    headers = [
        "impl",
        "α",
        "ρ",
        "precision",
        "train img/s",
        "step ms",
        "train TFLOP/s",
        "compile s",
        "ours / this",
    ]
    rows = []
    for r in report["results"]:
        mine = ours.get((r["alpha"], r["resolution"], r["precision"]))
        rows.append(
            [
                r["impl"],
                f"{r['alpha']:g}",
                r["resolution"],
                r["precision"],
                f"{r['train_ips']:.0f}",
                f"{r['step_ms']:.1f}",
                f"{r['train_tflops']:.2f}",
                f"{r['compile_s']:.1f}",
                f"{mine / r['train_ips']:.2f}" if mine else "—",
            ]
        )
    numeric = [False, True, True, False, True, True, True, True, True]
    lines.append(tables.markdown(headers, rows, numeric))
    for precision, tflops in report["matmul_tflops"].items():
        lines.append(f"\nMatmul ceiling, {precision}: {tflops:.1f} TFLOP/s.")
    for impl, reason in report["unavailable"].items():
        lines.append(f"\nUnavailable: {impl} ({reason}).")
    for item in report["failed"]:
        lines.append(
            f"\nFailed: {item['impl']} α={item['alpha']:g} ρ={item['resolution']} "
            f"{item['precision']}: {item['error']}"
        )
    if report["skipped"]:
        lines.append(f"\nSkipped by the time budget: {len(report['skipped'])} configurations.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="jax", choices=["jax", "tensorflow", "torch"])
    parser.add_argument(
        "--cells", type=parse_cell, nargs="+", default=list(GRID_CELLS), help="ALPHA:RESOLUTION"
    )
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--impls", nargs="*", default=list(IMPLS))
    parser.add_argument("--peer", action="append", default=[], help="NAME=module:function")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--jit", default="auto", help="Keras jit_compile: auto, true or false")
    parser.add_argument("--matmul-size", type=int, default=8192, help="0: no ceiling")
    parser.add_argument("--budget-s", type=float, default=360.0)
    parser.add_argument("--out", help="write the JSON results here")
    args = parser.parse_args(argv)
    if args.jit in ("true", "false"):
        args.jit = args.jit == "true"
    report = run(args)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=2)
    sys.stdout.write(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
