"""A worker's start: a fresh interpreter (cold) against a fork of the warm zygote (warm).

One tiny cell (default α 0.25, ρ 32: one training step on a small synthetic dataset, prepared
once in a temporary directory) is trained by the real worker (``mnv1.sweep.warm.start_worker``,
as the orchestrator starts it), alternately cold and warm (A B A B ...), ``--repeats`` times each.
Each worker times its own phases against the moment it was asked for (``$MNV1_SPAWN_TIME``,
``mnv1.timing``), and this reads them back from its JSON-lines run log:

* **to first line**: request to the worker's first line (``time_process_start_s``): for a cold
  worker the interpreter's start, for a warm one the fork;
* **to bootstrap end**: that, plus the run log's set-up and the TensorFlow import with bootstrap
  (``time_tracking_s`` + ``time_import_s``; the JSON-lines log writes a few lines, and the config
  is read in between, both within milliseconds);
* **to exit**: request to the process's exit as this process saw it (the whole tiny run).

Medians over the repeats, the ratio cold / warm of each, the zygote's own start (once per
orchestrating process, before the first warm worker; not in the warm figures) and the threads
it had after its imports. A cell of a sweep logs to MLflow, whose import a cold worker pays too
(in ``time_tracking_s``) and the zygote has done: the sweep saves that on top of these figures.
The 1-minute load average before and after, and the hardware, are printed beside them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mnv1.bench import median, parse_cell, render

HELP = "a worker's start, cold interpreter against warm fork: to its first line, to bootstrap end"

MODES = ("cold", "warm")
FIGURES = ("to_first_line_s", "to_bootstrap_end_s", "to_exit_s")


def _config(root: Path, cell: tuple[float, int], name: str) -> dict[str, Any]:
    """The tiny cell's run config (one step, its own checkpoint folder, nothing exported)."""
    from mnv1.config import RunConfig, to_dict

    cfg = to_dict(RunConfig())
    cfg["model"].update(alpha=cell[0], resolution=cell[1])
    cfg["data"].update(data_dir=str(root / "tfds"))
    cfg["data"]["synthetic"].update(train_size=64, val_size=32, image_size=64)
    cfg["train"].update(
        epochs=1,
        steps_per_epoch=1,
        batch_size=8,
        bn_recalibration_batches=1,
        checkpoint_dir=str(root / "checkpoints" / name),
    )
    cfg["tracking"].update(log_model=False, system_metrics_interval_s=0)
    return cfg


def _prepare(root: Path, cell: tuple[float, int]) -> None:
    """The synthetic dataset, prepared before any timing (a worker only reads it)."""
    from mnv1.config import from_dict
    from mnv1.data.prepare import prepare

    prepare(from_dict(_config(root, cell, "prepare")).data)


def _metrics(path: Path) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for line in path.read_text().splitlines():
        metrics.update(json.loads(line).get("metrics", {}))
    return metrics


def _one(
    root: Path, cell: tuple[float, int], mode: str, i: int, timeout: float
) -> dict[str, float]:
    """Start one worker ``mode`` and return its three figures."""
    from mnv1.sweep.warm import start_worker
    from mnv1.worker_contract import spawn_env

    name = f"{mode}{i}"
    config = root / f"{name}.json"
    config.write_text(json.dumps(_config(root, cell, name)))
    run_log = root / f"{name}.jsonl"
    args = ["--config", str(config), "--run-log", f"jsonl:{run_log}"]
    asked = time.time()
    proc = start_worker(args, spawn_env(os.environ), warm=mode == "warm")
    assert proc.stderr is not None
    output = proc.stderr.read()
    code = proc.wait(timeout=timeout)
    exited = time.time() - asked
    if code != 0:
        raise RuntimeError(f"the {mode} worker exited {code}:\n{output[-2000:]}")
    m = _metrics(run_log)
    first = m["time_process_start_s"]
    return {
        "to_first_line_s": first,
        "to_bootstrap_end_s": first + m["time_tracking_s"] + m["time_import_s"],
        "to_exit_s": exited,
    }


def measure(args: argparse.Namespace, root: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from mnv1.sweep import warm
    from mnv1.training.repro import cpu_model
    from mnv1.worker_contract import spawn_env

    _prepare(root, args.cell)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    hello = warm.prestart(spawn_env(os.environ))
    zygote_start = time.perf_counter() - started
    if hello.get("problem"):
        raise RuntimeError(f"no warm zygote here: {hello['problem']}")
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for i in range(args.repeats):
        for mode in MODES:  # A B A B: both see the same drift in the machine's load
            runs[mode].append(_one(root, args.cell, mode, i, args.timeout))
    load_after = os.getloadavg()[0]
    warm.shutdown()
    medians = {m: {f: median([r[f] for r in runs[m]]) for f in FIGURES} for m in MODES}
    rows: list[dict[str, Any]] = [
        {"start": mode, **medians[mode], "runs": [r["to_bootstrap_end_s"] for r in runs[mode]]}
        for mode in MODES
    ]
    rows.append(
        {
            "start": "ratio cold / warm",
            **{f: medians["cold"][f] / max(medians["warm"][f], 1e-9) for f in FIGURES},
            "runs": [],
        }
    )
    meta = {
        "cell": f"α {args.cell[0]:g}, ρ {args.cell[1]}, 1 step",
        "repeats (A B alternated)": args.repeats,
        "zygote start, once (s)": round(zygote_start, 2),
        "zygote imports (s)": round(float(hello["import_s"]), 2),
        "zygote threads after imports": ", ".join(hello["threads"]),
        "CPU": f"{cpu_model()} ({os.cpu_count()} cores visible)",
        "Python": platform.python_version(),
        # A shared machine: the 1-minute load average says how busy it was.
        "load average before/after": f"{load_before:.2f} / {load_after:.2f}",
    }
    return rows, meta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cell",
        type=parse_cell,
        default=(0.25, 32),
        metavar="ALPHA:RESOLUTION",
        help="the tiny cell to start (default 0.25:32)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="workers of each kind (median)")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds before one worker counts as hung"
    )


def run(args: argparse.Namespace) -> int:
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    # The workers print their epochs on stdout (file descriptor 1) and TFDS its preparation
    # (sys.stdout), where this prints its result (--format json): theirs go to stderr for the
    # span of the measurement.
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with (
            contextlib.redirect_stdout(sys.stderr),
            tempfile.TemporaryDirectory(prefix="mnv1-bench-spawn-") as tmp,
        ):
            rows, meta = measure(args, Path(tmp))
    except RuntimeError as err:
        print(f"mnv1-bench spawn: {err}", file=sys.stderr)
        return 1
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    columns = {
        "start": "worker start",
        "to_first_line_s": "to first line (s)",
        "to_bootstrap_end_s": "to bootstrap end (s)",
        "to_exit_s": "to exit (s)",
    }
    print(render("Worker start: cold against warm", columns, rows, meta, args.format))
    return 0
