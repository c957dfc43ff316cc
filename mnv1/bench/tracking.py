"""What MLflow tracking costs a cell: dataset inputs, system metrics, the LoggedModel.

One cell of a study (default: the demo's, at a pinned training budget) runs through the real
``mnv1-train -m`` in a fresh launch directory (its own SQLite store; one data directory shared,
prepared before the first timing), as three variants, alternated A B C A B C:

* **base**: ``tracking.log_model=false tracking.system_metrics_interval_s=0``;
* **system metrics**: the base with MLflow's monitor sampling every ``--interval`` seconds;
* **LoggedModel**: the base with ``tracking.log_model=true`` (model, signature, input example).

Each variant's time is the cell's own wall time as its orchestrator recorded it (``time_cell_s``:
run creation to the worker's exit), median over ``--repeats``; its cost is the difference of
medians to the base, and its share that cost over the base. The **dataset inputs** are two
synchronous calls with no background part (building the two inputs from what the data layer
already read, and logging them), so their cost is timed directly, in this process, against a
fresh run of a store like the cell's, median over the same repeats. The 1-minute load average
before and after, and the hardware, are printed beside the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mnv1.bench import median, parse_cell, render
from mnv1.bench.sweep import SweepFailed, run_sweep
from mnv1.timing import METRIC_CELL
from mnv1.training.repro import cpu_model

HELP = "per-cell cost of dataset inputs, system metrics and the LoggedModel, against the cell"

BASE = "base"
VARIANTS: dict[str, tuple[str, ...]] = {
    BASE: ("tracking.log_model=false", "tracking.system_metrics_interval_s=0"),
    "system metrics": ("tracking.log_model=false",),  # + the interval, see _overrides
    "LoggedModel": ("tracking.log_model=true", "tracking.system_metrics_interval_s=0"),
}
INPUTS = "dataset inputs"


def _overrides(args: argparse.Namespace, variant: str) -> list[str]:
    alpha, resolution = args.cell
    out = [
        f"model.alpha={alpha:g}",  # on the command line: replaces the study's swept values
        f"model.resolution={resolution}",
        "tracking.report=false",  # the report is the sweep's, not the cell's
        *VARIANTS[variant],
    ]
    if variant == "system metrics":
        out.append(f"tracking.system_metrics_interval_s={args.interval:g}")
    if args.steps is not None:
        out.append(f"train.steps_per_epoch={args.steps}")
    return out


def _cell_seconds(workdir: Path, study: str) -> float:
    from mnv1.tracking.queries import sweep_metrics

    found = sweep_metrics(study, uri=f"sqlite:///{workdir / 'mlflow.db'}")
    [(name, metrics)] = found.cells.items()
    if found.statuses[name] != "FINISHED":
        raise SweepFailed(f"cell {name} ended {found.statuses[name]}")
    return float(metrics[METRIC_CELL])


def _inputs_seconds(root: Path, data_dir: Path, repeats: int) -> list[float]:
    """The dataset inputs' own cost: build them from the prepared dataset's builder (as the data
    layer does once it has loaded it) and log them on a fresh run, once per repeat."""
    import tensorflow_datasets as tfds

    from mnv1.data import builders
    from mnv1.data.inputs import data_inputs
    from mnv1.tracking import runs
    from mnv1.tracking.datasets import log_inputs
    from mnv1.tracking.store import client

    [info] = sorted(data_dir.glob("*/*/*/dataset_info.json"))  # the one dataset the cells read
    builder = tfds.builder_from_directory(str(info.parent))
    names = sorted(builder.info.splits.keys())
    train = "train" if "train" in names else names[0]
    val = next((n for n in names if n != train), train)
    splits = builders.Splits(
        train,
        val,
        int(builder.info.splits[train].num_examples),
        int(builder.info.splits[val].num_examples),
    )
    (root / "inputs").mkdir()
    uri = f"sqlite:///{root / 'inputs' / 'mlflow.db'}"
    experiment = client(uri).create_experiment("inputs")
    seconds = []
    for i in range(repeats):
        run_id = runs.create(uri, experiment, f"cell{i}", {})
        start = time.perf_counter()
        log_inputs(uri, run_id, data_inputs(builder, splits, splits.val_examples, False))
        seconds.append(time.perf_counter() - start)
    return seconds


def _memory_gb() -> float:
    import psutil

    return float(psutil.virtual_memory().total) / 2**30


def measure(args: argparse.Namespace, root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    data_dir = root / "tfds"
    load_before = os.getloadavg()[0]
    # A first, untimed cell prepares the dataset (and warms the file cache) for all.
    warm = root / "warmup"
    warm.mkdir()
    run_sweep(args.study, _overrides(args, BASE), warm, data_dir, args.timeout)
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for i in range(args.repeats):
        for name in VARIANTS:
            workdir = root / f"{i}_{name.replace(' ', '_')}"
            workdir.mkdir()
            run_sweep(args.study, _overrides(args, name), workdir, data_dir, args.timeout)
            times[name].append(_cell_seconds(workdir, args.study))
    inputs = _inputs_seconds(root, data_dir, args.repeats)
    load_after = os.getloadavg()[0]
    base = median(times[BASE])
    rows: list[dict[str, Any]] = [
        {"item": BASE, "seconds": base, "cost_s": 0.0, "share_pct": 0.0, "runs": times[BASE]}
    ]
    for name in ("system metrics", "LoggedModel"):
        cost = median(times[name]) - base
        rows.append(
            {
                "item": name,
                "seconds": median(times[name]),
                "cost_s": cost,
                "share_pct": 100 * cost / base,
                "runs": times[name],
            }
        )
    cost = median(inputs)
    rows.append(
        {
            "item": INPUTS,
            "seconds": base + cost,
            "cost_s": cost,
            "share_pct": 100 * cost / base,
            "runs": inputs,
        }
    )
    alpha, resolution = args.cell
    meta = {
        "study": args.study,
        "cell": f"α {alpha:g}, ρ {resolution}",
        "steps per epoch": args.steps if args.steps is not None else "the study's",
        "system metrics interval": f"{args.interval:g} s",
        "repeats": args.repeats,
        # A shared machine: the 1-minute load average says how busy it was.
        "load average before/after": f"{load_before:.2f} / {load_after:.2f}",
        "hardware": f"{cpu_model()}, {os.cpu_count()} CPUs, {_memory_gb():.0f} GB",
        "python": platform.python_version(),
    }
    return rows, meta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", default="demo", help="experiment=<study> (default: demo)")
    parser.add_argument(
        "--cell",
        type=parse_cell,
        default=(0.5, 160),
        metavar="ALPHA:RESOLUTION",
        help="the cell to time (default 0.5:160, a middle cell of the demo)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=100,
        help="train.steps_per_epoch, pinned so every variant trains alike (default 100, the "
        "demo's budget on a laptop; 0: the study's own)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant (median)")
    parser.add_argument(
        "--interval",
        type=float,
        default=10.0,
        help="tracking.system_metrics_interval_s of the system-metrics variant (default 10)",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds before one cell is stopped"
    )


def run(args: argparse.Namespace) -> int:
    if args.steps == 0:
        args.steps = None
    if args.repeats < 1 or (args.steps is not None and args.steps < 1) or args.interval <= 0:
        print(
            "mnv1-bench tracking: --repeats and --steps must be >= 1 (--steps 0: the study's), "
            "--interval > 0",
            file=sys.stderr,
        )
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="mnv1-bench-tracking-") as tmp:
            rows, meta = measure(args, Path(tmp))
    except (SweepFailed, ValueError) as err:
        print(f"mnv1-bench tracking: {err}", file=sys.stderr)
        return 1
    columns = {
        "item": "variant",
        "seconds": "cell s (median)",
        "cost_s": "cost s",
        "share_pct": "% of the base cell",
        "runs": "runs (s)",
    }
    shown = [
        {**row, "runs": ", ".join(f"{s:.3g}" for s in row["runs"])}
        if args.format == "markdown"
        else row
        for row in rows
    ]
    print(render("tracking", columns, shown, meta, args.format))
    return 0
