"""Batch-1 LiteRT latency of the grid's cells: our model against ``keras.applications.MobileNet``.

Both models are built with random weights (latency does not depend on the values), exported the
same way (``mnv1.export.convert``: float32, and full-integer int8 calibrated on a few random
images) and timed in the same interpreter, in the same process, alternated A B A B over the
repeats so drift in the machine hits both. Each figure is the median over repeats of the median
of ``--runs`` single-image runs. Reported per cell: ours ÷ Keras (same graph: 1.0 within noise),
the int8 speed-up over float32, and across cells the log-log fit of latency on mult-adds (does
mult-adds predict latency on this machine, the paper's §3 claim) and Spearman's ρ of our cells'
latency order against the published TensorFlow Lite latencies (``mnv1.tflite_published``, a
Pixel 3: ranks and slopes compare across hardware, milliseconds do not).
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
from typing import Any

import numpy as np

from mnv1.bench import median, parse_cell, render
from mnv1.config import PAPER_ALPHAS, PAPER_RESOLUTIONS

HELP = "batch-1 LiteRT latency (float32, int8) of our model vs keras.applications.MobileNet"
MODELS = ("ours", "keras")
KINDS = ("fp32", "int8")


def _flatbuffers(model: Any, resolution: int, images: int) -> Any:
    from mnv1.export.convert import to_flatbuffers

    rng = np.random.default_rng(0)
    batch = rng.uniform(-1, 1, (images, resolution, resolution, 3)).astype(np.float32)
    return to_flatbuffers(model, [batch])


def bench_cell(
    alpha: float, resolution: int, threads: int, runs: int, repeats: int, warmup: int
) -> dict[str, Any]:
    """Median batch-1 milliseconds of both models in both precisions at one cell."""
    import keras

    from mnv1.costs import count_costs
    from mnv1.export.runtime import Stopwatch
    from mnv1.model import build_mobilenet_v1

    keras.utils.clear_session()
    ours = build_mobilenet_v1(alpha, resolution, 1000)
    keras_ref = keras.applications.MobileNet(
        input_shape=(resolution, resolution, 3), alpha=alpha, weights=None, classes=1000
    )
    costs = count_costs(ours)
    flat = {
        "ours": _flatbuffers(ours, resolution, 4),
        "keras": _flatbuffers(keras_ref, resolution, 4),
    }
    watches = {
        (name, kind): Stopwatch(getattr(flat[name], kind), threads, warmup)
        for name in MODELS
        for kind in KINDS
    }
    medians: dict[tuple[str, str], list[float]] = {key: [] for key in watches}
    for _ in range(repeats):  # A B A B: both models see the same conditions
        for key, watch in watches.items():
            medians[key].append(statistics.median(watch.runs(runs)))
    ms = {key: median(values) for key, values in medians.items()}
    return {
        "alpha": alpha,
        "resolution": resolution,
        "mult_adds": costs.mult_adds,
        "fp32_ms": ms[("ours", "fp32")],
        "keras_fp32_ms": ms[("keras", "fp32")],
        "fp32_ratio": ms[("ours", "fp32")] / ms[("keras", "fp32")],
        "int8_ms": ms[("ours", "int8")],
        "keras_int8_ms": ms[("keras", "int8")],
        "int8_ratio": ms[("ours", "int8")] / ms[("keras", "int8")],
        "int8_speedup": ms[("ours", "fp32")] / ms[("ours", "int8")],
        "fp32_bytes": len(flat["ours"].fp32),
        "int8_bytes": len(flat["ours"].int8),
        "runs": {f"{n}_{k}": v for (n, k), v in medians.items()},
    }


def shape_summary(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The log-log fit of latency on mult-adds and Spearman's ρ against the published order."""
    from mnv1.fits import loglog_fit, spearman
    from mnv1.tflite_published import SOURCE, published_ms

    out: dict[str, str] = {}
    for kind in KINDS:
        key = f"{kind}_ms"
        if len({r["mult_adds"] for r in rows}) >= 2:
            fit = loglog_fit([r["mult_adds"] for r in rows], [r[key] for r in rows])
            out[f"{kind} latency ∝ mult-adds^slope"] = f"slope {fit.slope:.3f}, R² {fit.r2:.3f}"
        pairs = [(r[key], published_ms(r["alpha"], r["resolution"], kind)) for r in rows]
        known = [(ours, theirs) for ours, theirs in pairs if theirs is not None]
        if len(known) >= 2:
            rho = spearman([p[0] for p in known], [p[1] for p in known])
            shown = "undefined (a constant series)" if rho is None else f"{rho:.3f}"
            out[f"{kind} Spearman ρ vs published ({len(known)} cells)"] = shown
            fit = loglog_fit(
                [r["mult_adds"] for r in rows if published_ms(r["alpha"], r["resolution"], kind)],
                [p[1] for p in known],
            )
            out[f"{kind} published slope on mult-adds"] = f"{fit.slope:.3f}, R² {fit.r2:.3f}"
    if any(k.startswith(("fp32 Spearman", "int8 Spearman")) for k in out):
        out["published source"] = SOURCE
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cell",
        dest="cells",
        type=parse_cell,
        action="append",
        default=None,
        metavar="ALPHA:RESOLUTION",
        help="a cell to time (repeatable; default: the 16 cells of the paper's grid)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="interpreter threads (default 1: comparable)"
    )
    parser.add_argument("--runs", type=int, default=10, help="single-image runs per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="A B repeats; medians reported")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs per flatbuffer")


def run(args: argparse.Namespace) -> int:
    from mnv1.export.runtime import cpu_model, runtime_version

    for name in ("threads", "runs", "repeats"):
        if getattr(args, name) < 1:
            print(f"mnv1-bench latency: --{name}={getattr(args, name)}: must be >= 1")
            return 2
    cells = args.cells or [(a, r) for a in PAPER_ALPHAS for r in PAPER_RESOLUTIONS]
    load_before = os.getloadavg()
    rows = [bench_cell(a, r, args.threads, args.runs, args.repeats, args.warmup) for a, r in cells]
    load_after = os.getloadavg()
    columns = {
        "alpha": "α",
        "resolution": "ρ",
        "mult_adds": "mult-adds",
        "fp32_ms": "fp32 ms",
        "keras_fp32_ms": "Keras fp32 ms",
        "fp32_ratio": "fp32 ours ÷ Keras",
        "int8_ms": "int8 ms",
        "keras_int8_ms": "Keras int8 ms",
        "int8_ratio": "int8 ours ÷ Keras",
        "int8_speedup": "int8 speed-up",
    }
    meta: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "runtime": runtime_version(),
        "threads": args.threads,
        "batch": 1,
        "runs per repeat": args.runs,
        "repeats (A B alternated)": args.repeats,
        "load average 1/5/15 min (before)": " ".join(f"{v:.2f}" for v in load_before),
        "load average 1/5/15 min (after)": " ".join(f"{v:.2f}" for v in load_after),
        **shape_summary(rows),
    }
    print(render("latency", columns, rows, meta, args.format))
    return 0
