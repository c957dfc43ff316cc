"""A cell's fixed costs outside training, each before and after its change, in one process.

Each part times the code a sweep runs, once the way it was (**before**) and once the way it is
(**after**), alternated B A B A … in this process, so the machine's drift hits both; each figure
is the median over ``--repeats``, the ratio is before / after (> 1: the change pays):

* **store**: a new SQLite tracking store, the first thing a sweep's start does on a fresh
  launch directory: MLflow's schema creation and migrations (before) against a copy of this
  host's template (after, ``mnv1.tracking.sqlite_store``);
* **LoggedModel**: logging a trained cell's model at ``--cell``: with the signature's output from
  a forward pass and MLflow's check of the input example, which loads the saved model and
  predicts (before), against the declared output and no check (after);
* **end of run**: a cell's last part with the LiteRT export on, at ``--cell``: the final
  metrics, the LoggedModel, then the export (before), against ``mnv1.training.run.log_end``,
  which writes the LoggedModel while the export converts (after).

The model is the cell's own, planned and built as a run builds it (one CPU device), with its
optimizer's state created by one training step on random images; every repeat logs into a fresh
run of one SQLite store. The 1-minute load average before and after, and the hardware, are
printed beside the figures. What one run traces is pinned by ``tests/test_train_traces.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnv1.bench import median, parse_cell, render

HELP = "a cell's fixed costs (store, LoggedModel, end of run) before and after, same process"

PARTS = ("store", "LoggedModel", "end of run")
VAL_EXAMPLES = 32
NUM_CLASSES = 10


@dataclass
class Cell:
    """A cell planned, built and stepped once, with the run's pieces the parts call."""

    plan: Any
    model: Any
    datasets: Any
    uri: str
    experiment: str


def _config(args: argparse.Namespace, root: Path) -> Any:
    from mnv1.config import RunConfig, from_dict, to_dict

    alpha, resolution = args.cell
    cfg = to_dict(RunConfig())
    cfg["model"].update(alpha=alpha, resolution=resolution)
    cfg["train"].update(epochs=1, steps_per_epoch=1, batch_size=16, checkpoint_dir=str(root))
    cfg["distribute"].update(cpu_replicas=None)
    cfg["tracking"].update(log_model=True)
    cfg["export"].update(enabled=True, warmup=args.warmup, repeats=args.latency_repeats)
    return from_dict(cfg)


def _datasets(resolution: int) -> Any:
    import numpy as np
    import tensorflow as tf

    from mnv1.data.types import Datasets, Fingerprint

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (VAL_EXAMPLES, resolution, resolution, 3)).astype(np.float32)
    labels = rng.integers(0, NUM_CLASSES, VAL_EXAMPLES).astype(np.int32)
    batches = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    return Datasets(
        train=batches,
        val=batches,
        num_classes=NUM_CLASSES,
        train_examples=VAL_EXAMPLES,
        val_examples=VAL_EXAMPLES,
        fingerprint=Fingerprint("random", "1", {"train": VAL_EXAMPLES}, NUM_CLASSES),
    )


def build_cell(args: argparse.Namespace, root: Path) -> Cell:
    """The cell's model as a run builds it, its optimizer state created by one step."""
    from mnv1.tracking.store import ensure_experiment
    from mnv1.training.plan import plan_run
    from mnv1.training.run import build_model, platform_of, start_strategy, training_data

    cfg = _config(args, root)
    datasets = _datasets(cfg.model.resolution)
    strategy = start_strategy(cfg)
    plan = plan_run(cfg, platform_of(strategy), datasets.train_examples, datasets.num_classes)
    built = build_model(plan, strategy)
    train = training_data(datasets.train, datasets.num_classes)
    built.model.fit(train, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    ensure_experiment(uri, "fixed")
    return Cell(plan, built.model, datasets, uri, "fixed")


def _fresh_run(cell: Cell, name: str) -> str:
    from mnv1.tracking import runs
    from mnv1.tracking.store import ensure_experiment

    return runs.create(cell.uri, ensure_experiment(cell.uri, cell.experiment), name, {})


def _example(cell: Cell) -> Any:
    return next(iter(cell.datasets.val))[0][:1].numpy()


def logged_model(cell: Cell, before: bool, repeat: int) -> float:
    from mnv1.tracking.runlog import MLflowRunLog

    run_log = MLflowRunLog(_fresh_run(cell, f"model_{before}_{repeat}"), cell.uri, before)
    example = _example(cell)
    started = time.perf_counter()
    run_log.log_model(cell.model, example)
    return time.perf_counter() - started


def end_of_run(cell: Cell, before: bool, repeat: int) -> float:
    from mnv1.export.cell import export_cell
    from mnv1.tracking import schema
    from mnv1.tracking.runlog import MLflowRunLog
    from mnv1.training.run import log_end

    run_log = MLflowRunLog(_fresh_run(cell, f"end_{before}_{repeat}"), cell.uri)
    final = {schema.METRIC_VAL_TOP1: 0.5, schema.METRIC_VAL_TOP5: 0.9}
    started = time.perf_counter()
    if before:  # one after the other, as log_end did
        run_log.log_metrics(final)
        run_log.log_model(cell.model, _example(cell))
        data = cell.datasets
        export_cell(cell.model, data.train, data.val, cell.plan.cfg.export, run_log, 0.5)
    else:
        log_end(cell.plan, cell.model, cell.datasets, final, run_log)
    return time.perf_counter() - started


def new_store(root: Path, before: bool, repeat: int) -> float:
    """A new store through ``sqlite_store.create``: with an empty template folder MLflow's
    migrations build it and it is kept as the template, a file copy (before); with the folder
    the first store filled, it is a copy (after)."""
    from mnv1.tracking import sqlite_store

    templates = root / ("templates_none" if before else "templates") / str(repeat if before else 0)
    os.environ[sqlite_store.ENV_TEMPLATE_DIR] = str(templates)
    db = root / f"store_{before}_{repeat}" / "mlflow.db"
    started = time.perf_counter()
    sqlite_store.create(db)
    return time.perf_counter() - started


def alternate(part: Callable[[bool, int], float], repeats: int) -> dict[str, list[float]]:
    """``part(before, repeat)`` seconds, before and after alternated, ``repeats`` of each."""
    times: dict[str, list[float]] = {"before": [], "after": []}
    for repeat in range(repeats):
        for before in (True, False):
            times["before" if before else "after"].append(part(before, repeat))
    return times


def measure(args: argparse.Namespace, root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    load_before = os.getloadavg()[0]
    parts: dict[str, Callable[[bool, int], float]] = {}
    if "store" in args.parts:
        new_store(root, False, 0)  # the template the copies are made from (untimed)
        parts["store"] = lambda before, i: new_store(root, before, i)
    if {"LoggedModel", "end of run"} & set(args.parts):
        cell = build_cell(args, root)
        logged_model(cell, False, -1)  # MLflow's and Keras's saving code, imported (untimed)
        parts["LoggedModel"] = lambda before, i: logged_model(cell, before, i)
        parts["end of run"] = lambda before, i: end_of_run(cell, before, i)
    rows = []
    for name in (p for p in PARTS if p in args.parts):
        times = alternate(parts[name], args.repeats)
        before, after = median(times["before"]), median(times["after"])
        rows.append(
            {
                "part": name,
                "before_s": before,
                "after_s": after,
                "saved_s": before - after,
                "ratio": before / after,
                "before_runs": times["before"],
                "after_runs": times["after"],
            }
        )
    alpha, resolution = args.cell
    meta = {
        "cell": f"α {alpha:g}, ρ {resolution}",
        "repeats": args.repeats,
        "export latency": f"{args.warmup} warm-up and {args.latency_repeats} timed runs",
        "load average before/after": f"{load_before:.2f} / {os.getloadavg()[0]:.2f}",
        "hardware": _hardware(),
        "python": platform.python_version(),
    }
    return rows, meta


def _hardware() -> str:
    import psutil

    from mnv1.training.repro import cpu_model

    memory = float(psutil.virtual_memory().total) / 2**30
    return f"{cpu_model()}, {os.cpu_count()} CPUs, {memory:.0f} GB"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cell",
        type=parse_cell,
        default=(1.0, 224),
        metavar="ALPHA:RESOLUTION",
        help="the cell whose model is logged and exported (default 1.0:224, the demo's largest)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs of each side (median)")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        metavar="PART",
        help=f"which parts to time (default all: {', '.join(PARTS)})",
    )
    parser.add_argument(
        "--warmup", type=int, default=5, help="export.warmup of the end of run (default 5)"
    )
    parser.add_argument(
        "--latency-repeats",
        type=int,
        default=20,
        help="export.repeats of the end of run (default 20, the demo's)",
    )


def run(args: argparse.Namespace) -> int:
    if args.repeats < 1 or args.warmup < 0 or args.latency_repeats < 1:
        print(
            "mnv1-bench fixed: --repeats and --latency-repeats must be >= 1, --warmup >= 0",
            file=sys.stderr,
        )
        return 2
    from mnv1.tracking.sqlite_store import ENV_TEMPLATE_DIR

    previous = os.environ.get(ENV_TEMPLATE_DIR)
    try:
        # stdout carries the result alone (--format json, --log-to): what the timed code
        # prints (MLflow's check predicts with a progress bar) goes to stderr.
        with (
            tempfile.TemporaryDirectory(prefix="mnv1-bench-fixed-") as tmp,
            contextlib.redirect_stdout(sys.stderr),
        ):
            rows, meta = measure(args, Path(tmp))
    finally:  # the parts point the template folder into the temporary directory
        if previous is None:
            os.environ.pop(ENV_TEMPLATE_DIR, None)
        else:
            os.environ[ENV_TEMPLATE_DIR] = previous
    columns = {
        "part": "part",
        "before_s": "before s (median)",
        "after_s": "after s (median)",
        "saved_s": "saved s",
        "ratio": "before / after",
        "before_runs": "before runs (s)",
        "after_runs": "after runs (s)",
    }
    shown = [
        {**row, **{k: ", ".join(f"{s:.3g}" for s in row[k]) for k in ("before_runs", "after_runs")}}
        if args.format == "markdown"
        else row
        for row in rows
    ]
    print(render("fixed", columns, shown, meta, args.format))
    return 0
