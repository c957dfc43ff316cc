"""Time the 16 grid cells on one GPU: float32 and mixed precision, with and without XLA.

Made for the lent GPU machine, which has JAX and PyTorch but no TensorFlow: only Keras (and
KerasTuner) travel there as wheels. So this script times *the same builder* (``mnv1.model``, pure
Keras 3) on the JAX backend by default and says so beside every figure; the TensorFlow path is
timed wherever TensorFlow and a GPU meet (``--backend tensorflow``).

On JAX, ``jit_compile=False`` runs every op eagerly: it is timed too, but with fewer steps, since
it is the "without XLA" baseline rather than a way anyone should train.

The whole run keeps to a time budget (default 7 minutes, within the 8 the issue allows): the
configurations run in order of interest (float32 + XLA for all 16 cells, then mixed precision +
XLA, then the eager baselines) and whatever the budget leaves out is listed as skipped, never
silently dropped.

Usage on the device (see BENCHMARKS.md for the exact command):
    KERAS_BACKEND=jax python -m mnv1.bench.gpu --out results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from mnv1 import tables


@dataclass
class GpuCell:
    alpha: float
    resolution: int
    precision: str
    xla: bool
    batch: int
    train_ips: float
    infer_ips: float
    compile_seconds: float
    mult_adds: int
    train_tflops: float


def _plan(alphas: list[float], resolutions: list[int]) -> list[tuple[float, int, str, bool]]:
    cells = [(a, r) for a in alphas for r in resolutions]
    plan = [(a, r, "float32", True) for a, r in cells]
    plan += [(a, r, "mixed_bfloat16", True) for a, r in cells]
    plan += [(a, r, "float32", False) for a, r in cells]
    plan += [(a, r, "mixed_bfloat16", False) for a, r in cells]
    return plan


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The backend must be chosen before Keras is imported.
    os.environ.setdefault("KERAS_BACKEND", args.backend)
    import keras
    import numpy as np

    from mnv1.bench.model import TRAIN_FLOPS_PER_MULT_ADD, compiled, step_timers
    from mnv1.costs import count_costs
    from mnv1.model import build_mobilenet_v1

    deadline = time.monotonic() + args.budget_s
    results: list[GpuCell] = []
    skipped: list[dict[str, Any]] = []
    rng = np.random.default_rng(0)
    for alpha, resolution, precision, xla in _plan(args.alphas, args.resolutions):
        if results and time.monotonic() > deadline:  # the first configuration always runs
            skipped.append(
                {"alpha": alpha, "resolution": resolution, "precision": precision, "xla": xla}
            )
            continue
        keras.mixed_precision.set_dtype_policy(precision)
        keras.utils.clear_session()
        batch = args.batch
        x = rng.uniform(-1, 1, (batch, resolution, resolution, 3)).astype(np.float32)
        y = rng.integers(0, 1000, (batch,)).astype(np.int32)
        model = compiled(build_mobilenet_v1(alpha, resolution, 1000), jit_compile=xla)
        steps = args.steps if xla else max(1, args.steps // 4)
        start = time.perf_counter()
        timers = step_timers(model, x, y, steps)  # its first steps trace and compile
        compile_seconds = time.perf_counter() - start
        train = [timers["train"]() for _ in range(3)]
        infer = [timers["infer"]() for _ in range(3)]
        mult_adds = count_costs(model).mult_adds
        train_ips = statistics.median(train)
        results.append(
            GpuCell(
                alpha=alpha,
                resolution=resolution,
                precision=precision,
                xla=xla,
                batch=batch,
                train_ips=train_ips,
                infer_ips=statistics.median(infer),
                compile_seconds=compile_seconds,
                mult_adds=mult_adds,
                train_tflops=train_ips * TRAIN_FLOPS_PER_MULT_ADD * mult_adds / 1e12,
            )
        )
        print(
            f"a={alpha:g} r={resolution} {precision:>14} xla={xla!s:5} "
            f"train {train_ips:9.1f} img/s  infer {results[-1].infer_ips:9.1f} img/s  "
            f"compile {compile_seconds:5.1f}s",
            flush=True,
        )
    keras.mixed_precision.set_dtype_policy("float32")
    return {
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "python": platform.python_version(),
        "device": _device_name(keras.backend.backend()),
        "batch": args.batch,
        "results": [asdict(r) for r in results],
        "skipped": skipped,
    }


def _device_name(backend: str) -> str:
    if backend == "jax":
        import jax

        return str(jax.devices()[0].device_kind)
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return "tensorflow default device"


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"Backend: {report['backend']} (Keras {report['keras']}), device: {report['device']}, "
        f"batch {report['batch']}.",
        "",
    ]
    headers = ["α", "ρ", "precision", "XLA", "train img/s", "infer img/s", "train TFLOP/s"]
    rows = [
        [
            f"{r['alpha']:g}",
            r["resolution"],
            r["precision"],
            "on" if r["xla"] else "off",
            f"{r['train_ips']:.0f}",
            f"{r['infer_ips']:.0f}",
            f"{r['train_tflops']:.2f}",
            f"{r['compile_seconds']:.1f}",
        ]
        for r in report["results"]
    ]
    numeric = [True, True, False, False, True, True, True, True]
    lines.append(tables.markdown([*headers, "compile s"], rows, numeric))
    if report["skipped"]:
        lines.append(f"\nSkipped by the time budget: {len(report['skipped'])} configurations.")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="jax", choices=["jax", "tensorflow", "torch"])
    parser.add_argument("--alphas", type=float, nargs="+", default=[1.0, 0.75, 0.5, 0.25])
    parser.add_argument("--resolutions", type=int, nargs="+", default=[224, 192, 160, 128])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--out", help="write the JSON results here")
    args = parser.parse_args(argv)
    report = run(args)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=2)
    sys.stdout.write(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
