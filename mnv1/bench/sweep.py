"""Sweep overhead: a small study through the real ``mnv1-train -m``, against its pure training.

Runs ``mnv1-train -m experiment=<study> [OVERRIDES]`` in a subprocess, in a fresh directory with
its own SQLite store and data directory (so every cell trains and the dataset is prepared), and
times it from launch to exit: the sweep's **wall time**. The runs log where their time went
(``mnv1.timing``: each worker its phases, the orchestrator each cell's wall time, the sweep
start and end theirs on the parent run); this reads them back from the store and splits the
wall time into parts that add up to it exactly:

* **pure training**: every training step of every run (the first step of each run, which traces
  and compiles the train function, shown apart);
* per run: process start (spawn to the worker's first line: interpreter and imports),
  TensorFlow import and bootstrap, dataset loading, model build and compile, evaluation
  (BatchNorm re-estimation included), checkpoints, tracking (time inside run-log calls, and
  importing mlflow), the worker's unattributed rest, and its final write and process exit;
* per sweep: dataset preparation (sweep start), orchestration (finding and creating runs,
  recording their outcome, the status matrix), the report, and the remainder: ``mnv1-train``'s
  own start (Hydra composition, grid validation) and the launcher.

The overhead share is ``1 - pure training / wall``. A sweep takes minutes: it is run once, not
repeated, so the figures carry the machine's load (printed beside them).

Beside the breakdown: **the plan against the cells** (``plan X s, cells Y s, error Z%``), the
estimate the sweep printed before its first cell (``plan_estimate_trained_s``) against the time
its cells took one after another (``plan_actual_s``, both on the parent run). With
``--relaunch`` the same sweep runs a second time in the same directory with
``tracking.rerun=true``: every cell trains again, and its plan learns from the first launch's
finished cells (``mnv1.sweep.learned``), so both estimates are checked, the probe's and the
learned one.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mnv1
from mnv1.bench import render
from mnv1.sweep.plan_record import (
    METRIC_PLAN_ACTUAL,
    METRIC_PLAN_ESTIMATE,
    METRIC_PLAN_ESTIMATE_TRAINED,
)
from mnv1.timing import (
    METRIC_CELL,
    METRIC_PLAN,
    METRIC_PREPARE,
    METRIC_REPORT,
    METRIC_SWEEP_FINISH,
    METRIC_SWEEP_START,
    METRIC_WORKER_WALL,
    PHASES,
    metric_name,
)
from mnv1.tracking.schema import TAG_STUDY

# This benchmark logs its own breakdown (named metrics) for --log-to; see mnv1.cli.bench.
LOGS_ITSELF = True

HELP = "a study's wall time against its runs' pure training time, the overhead broken down"

# The wall time's parts: (key, label); they add up to the wall time.
COMPONENTS: tuple[tuple[str, str], ...] = (
    ("process_start", "process start (spawn → worker main)"),
    ("import", "TensorFlow import, bootstrap, devices"),
    ("prepare", "dataset preparation (sweep start)"),
    ("data", "dataset loading (pipelines)"),
    ("build", "model build, compile, costs"),
    ("trace", "training: first step (tracing, input start)"),
    ("train", "training: other steps"),
    ("evaluate", "evaluation (BatchNorm re-estimation incl.)"),
    ("checkpoint", "checkpoints"),
    ("tracking", "tracking (run_log calls, mlflow import)"),
    ("worker_other", "worker, unattributed"),
    ("process_exit", "final metrics write, process exit"),
    ("orchestration", "orchestration (run bookkeeping, status matrix)"),
    ("report", "report (sweep end)"),
    ("plan", "plan before the first cell (its probe unless cached)"),
    ("remainder", "remainder (mnv1-train start, Hydra, launcher)"),
)
TRAINING = ("trace", "train")
LOG_TAIL_LINES = 60


class SweepFailed(RuntimeError):
    """The benchmarked sweep did not finish every cell."""


@dataclass
class CellTimes:
    name: str
    seconds: float
    """The cell as its orchestrator saw it (``run_cell``)."""
    phases: dict[str, float]
    """Worker phases (``mnv1.timing.PHASES``) plus ``process_exit`` and ``orchestration``."""


@dataclass
class Breakdown:
    wall_seconds: float
    components: dict[str, float]
    """Seconds per ``COMPONENTS`` key; they add up to ``wall_seconds``."""
    cells: list[CellTimes]

    @property
    def pure_training_seconds(self) -> float:
        return sum(self.components[key] for key in TRAINING)

    @property
    def overhead_share(self) -> float:
        return 1.0 - self.pure_training_seconds / self.wall_seconds

    @property
    def measured_in_workers(self) -> float:
        """Seconds the workers accounted for themselves (from spawn to their final write)."""
        return sum(sum(c.phases[p] for p in PHASES) for c in self.cells)


def _metric(metrics: Mapping[str, float], key: str, where: str) -> float:
    if key not in metrics:
        raise ValueError(
            f"{where} has no metric {key!r} (has: {sorted(metrics)}); it was not recorded by "
            "this version of mnv1 (see mnv1.timing)"
        )
    return float(metrics[key])


def breakdown(
    wall_seconds: float, parent: Mapping[str, float], cells: Mapping[str, Mapping[str, float]]
) -> Breakdown:
    """Split ``wall_seconds`` into ``COMPONENTS`` from the metrics of the parent and the cells.

    Raises ValueError naming the run and the metric when one is missing.
    """
    if not cells:
        raise ValueError("the sweep has no cell runs to break down")
    totals = dict.fromkeys((key for key, _ in COMPONENTS), 0.0)
    per_cell = []
    for name, metrics in sorted(cells.items()):
        where = f"cell run {name}"
        phases = {p: _metric(metrics, metric_name(p), where) for p in PHASES}
        worker_wall = _metric(metrics, METRIC_WORKER_WALL, where)
        cell_seconds = _metric(metrics, METRIC_CELL, where)
        # What the worker did not account for itself: writing its final metrics, then exiting.
        phases["process_exit"] = worker_wall - sum(phases.values())
        phases["orchestration"] = cell_seconds - worker_wall
        per_cell.append(CellTimes(name, cell_seconds, phases))
        for key, seconds in phases.items():
            totals[key] += seconds
    where = "the sweep's parent run"
    start = _metric(parent, METRIC_SWEEP_START, where)
    prepare = _metric(parent, METRIC_PREPARE, where)
    finish = _metric(parent, METRIC_SWEEP_FINISH, where)
    report = _metric(parent, METRIC_REPORT, where)
    totals["prepare"] += prepare
    totals["report"] += report
    # Recorded since the plan exists; a parent run from before reads as no plan.
    totals["plan"] += float(parent.get(METRIC_PLAN, 0.0))
    totals["orchestration"] += (start - prepare) + (finish - report)
    totals["remainder"] = wall_seconds - sum(v for k, v in totals.items() if k != "remainder")
    return Breakdown(wall_seconds, totals, per_cell)


@dataclass(frozen=True)
class PlanCheck:
    """The plan a launch printed against what its cells took."""

    estimate_s: float
    actual_s: float

    @property
    def error(self) -> float:
        """Relative error of the estimate: +0.1 is 10% too long."""
        return self.estimate_s / self.actual_s - 1.0

    def line(self) -> str:
        return (
            f"plan {self.estimate_s:.1f} s, cells {self.actual_s:.1f} s, "
            f"error {100 * self.error:+.1f}%"
        )


def plan_check(parent: Mapping[str, float]) -> PlanCheck | None:
    """From a sweep's parent run: the estimate of the cells its last launch trained, and the
    time they took; None when it recorded no estimate (no probe) or trained nothing."""
    estimate = parent.get(METRIC_PLAN_ESTIMATE_TRAINED, parent.get(METRIC_PLAN_ESTIMATE))
    actual = parent.get(METRIC_PLAN_ACTUAL)
    if estimate is None or actual is None or actual <= 0:
        return None
    return PlanCheck(float(estimate), float(actual))


def train_command() -> list[str]:
    """The installed ``mnv1-train`` beside this interpreter, else the module itself."""
    script = Path(sys.executable).with_name("mnv1-train")
    if script.exists():
        return [str(script)]
    found = shutil.which("mnv1-train")
    return [found] if found else [sys.executable, "-m", "mnv1.cli.train"]


def experiment_of(study: str, overrides: Sequence[str]) -> str:
    """The MLflow experiment the sweep records into: ``tracking.experiment`` if overridden,
    else the study (``conf/tracking/mlflow.yaml``)."""
    experiment = study
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if sep and key == "tracking.experiment":
            experiment = value
    return experiment


def run_sweep(
    study: str, overrides: Sequence[str], workdir: Path, data_dir: Path, timeout: float
) -> tuple[float, list[str]]:
    """Run the sweep in ``workdir``; its wall time in seconds and the command run.

    Raises SweepFailed with the end of its log when it does not exit 0.
    """
    command = [
        *train_command(),
        "-m",
        f"experiment={study}",
        f"data.data_dir={data_dir}",
        *overrides,
    ]
    env = dict(os.environ)
    # The child runs this very checkout, whatever the console script was installed from.
    root = str(Path(mnv1.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{workdir / 'mlflow.db'}"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    log_path = workdir / "sweep.log"
    with log_path.open("w") as log:
        start = time.perf_counter()
        try:
            code = subprocess.run(
                command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired as err:
            raise SweepFailed(f"the sweep ran past --timeout {timeout:g} s") from err
        wall = time.perf_counter() - start
    if code != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        raise SweepFailed(
            f"`{' '.join(command)}` exited {code}; the end of its log:\n" + "\n".join(tail)
        )
    return wall, command


def _fresh_workdir(path: Path) -> None:
    if (path / "mlflow.db").exists():
        raise ValueError(
            f"--workdir {path} already holds a tracking store (mlflow.db): its finished cells "
            "would be skipped, not timed; give an empty or new directory"
        )
    path.mkdir(parents=True, exist_ok=True)


def measure(args: argparse.Namespace, workdir: Path) -> tuple[Breakdown, dict[str, Any]]:
    # Reading the grid artifact back would draw a progress bar on stderr.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mnv1.tracking.queries import sweep_metrics

    _fresh_workdir(workdir)
    data_dir = Path(args.data_dir) if args.data_dir else workdir / "tfds"
    load_before = os.getloadavg()[0]
    wall, command = run_sweep(args.study, args.overrides, workdir, data_dir, args.timeout)
    load_after = os.getloadavg()[0]
    store = f"sqlite:///{workdir / 'mlflow.db'}"
    found = sweep_metrics(experiment_of(args.study, args.overrides), uri=store)
    unfinished = {n: s for n, s in found.statuses.items() if s != "FINISHED"}
    if unfinished:
        raise SweepFailed(f"cells did not finish: {unfinished}")
    result = breakdown(wall, found.parent, found.cells)
    checks = {"plan vs cells": plan_check(found.parent)}
    if args.relaunch:
        # The same sweep again: every cell trains anew, its plan learns from the first launch.
        run_sweep(
            args.study, [*args.overrides, "tracking.rerun=true"], workdir, data_dir, args.timeout
        )
        again = sweep_metrics(experiment_of(args.study, args.overrides), uri=store)
        load_after = os.getloadavg()[0]
        checks["relaunch: plan (learned from the first launch) vs cells"] = plan_check(again.parent)
    meta = {
        "study": args.study,
        "overrides": " ".join(args.overrides) or "none",
        "cells": len(result.cells),
        "wall seconds": round(result.wall_seconds, 1),
        "pure training seconds": round(result.pure_training_seconds, 1),
        "overhead share": round(result.overhead_share, 4),
        "command": " ".join(["mnv1-train", *command[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "CPUs visible": os.cpu_count(),
        # A shared machine: the 1-minute load average says how busy it was.
        "load average before/after": f"{load_before:.2f} / {load_after:.2f}",
        "repeats": "1 (a sweep is long; expect run-to-run noise)",
        # The estimate each launch printed against its cells' time (mnv1.sweep.plan).
        **{name: check.line() if check else "no estimate" for name, check in checks.items()},
    }
    return result, meta


def _rows(result: Breakdown) -> list[dict[str, Any]]:
    return [
        {
            "component": key,
            "label": label,
            "seconds": result.components[key],
            "share": result.components[key] / result.wall_seconds,
        }
        for key, label in COMPONENTS
    ]


def format_result(result: Breakdown, meta: dict[str, Any], fmt: str) -> str:
    rows = _rows(result)
    cells = [{"cell": c.name, "seconds": c.seconds, **c.phases} for c in result.cells]
    if fmt == "json":
        document = json.loads(render("sweep", {}, rows, meta, fmt))
        document["cells"] = cells
        return json.dumps(document, indent=2)
    main = render(
        "Sweep overhead",
        {"label": "part of the wall time", "seconds": "seconds", "share": "share"},
        rows,
        meta,
        fmt,
    )
    per_cell_columns = {"cell": "cell", "seconds": "cell s"}
    per_cell_columns.update({p: p for p in (*PHASES, "process_exit", "orchestration")})
    per_cell = render("Per cell (seconds)", per_cell_columns, cells, {}, fmt)
    return main + "\n\n" + per_cell


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", default="smoke", help="experiment=<study> (default: smoke)")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="OVERRIDE",
        help="more mnv1-train overrides, e.g. hydra.sweeper.params.model.alpha=1.0,0.25",
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="launch directory (kept; must hold no mlflow.db); default: a temporary one",
    )
    parser.add_argument(
        "--data-dir", default=None, help="data.data_dir (default: <workdir>/tfds, fresh)"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds before the sweep is stopped"
    )
    parser.add_argument(
        "--relaunch",
        action="store_true",
        help="run the sweep a second time (tracking.rerun=true) and check that plan too: it "
        "learns from the first launch's finished cells",
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.workdir:
            result, meta = measure(args, Path(args.workdir))
        else:
            with tempfile.TemporaryDirectory(prefix="mnv1-bench-sweep-") as tmp:
                result, meta = measure(args, Path(tmp))
    except (SweepFailed, ValueError) as err:
        print(f"mnv1-bench sweep: {err}", file=sys.stderr)
        return 1
    text = format_result(result, meta, args.format)
    print(text)
    if args.log_to:
        from mnv1.tracking.benchmarks import log_benchmark

        metrics = {
            "wall_s": result.wall_seconds,
            "pure_training_s": result.pure_training_seconds,
            "overhead_share": result.overhead_share,
            "cells": float(len(result.cells)),
            **{f"{key}_s": seconds for key, seconds in result.components.items()},
        }
        params = {k: v for k, v in meta.items() if k in ("study", "overrides", "command")}
        run_id = log_benchmark(
            args.log_to,
            args.log_experiment,
            "sweep",
            params,
            metrics,
            format_result(result, meta, "markdown"),
            tags={TAG_STUDY: args.study},
        )
        print(f"mnv1-bench sweep: logged as run {run_id} in {args.log_to}", file=sys.stderr)
    return 0
