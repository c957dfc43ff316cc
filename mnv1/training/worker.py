"""The training process: ``python -m mnv1.training.worker --config run.json [--run-log SPEC]``.

Every run trains in a process of its own: ``bootstrap`` must configure TensorFlow before its
devices exist, and several ``MirroredStrategy`` trainings of different shapes cannot share a
process (tensorflow/tensorflow#61314). The sweep launches one worker per cell: by default forked
from a zygote that imported this module, TensorFlow, Keras and MLflow once but initialised no
device (``mnv1.training.zygote``; the child runs ``process_main`` as this module's ``__main__``
does), or as a fresh interpreter with ``distribute.warm_workers=false``.

RunLog specs:

* ``jsonl:PATH``: append records to a JSON-lines file (``mnv1.runlog.JsonlRunLog``);
* ``mlflow:RUN_ID``: log into an existing MLflow run (``mnv1.tracking.runlog.MLflowRunLog``) at
  ``mnv1.tracking.uri`` of the config.

When the run finishes, the worker logs where its time went as final metrics ``time_<phase>_s``
(``mnv1.timing``): process start (from the spawn time an orchestrator passes in
``$MNV1_SPAWN_TIME``: when it asked for this process, whether started fresh or forked), TensorFlow
import (with bootstrap; a forked worker finds the modules imported), data, build, training,
evaluation, checkpoints, tracking.

Exit status (``mnv1.worker_contract``): 0 when the run finished; 1 when it failed (the traceback
goes to stderr and to the run log as ``traceback.txt``; a NaN loss fails the run the same way,
with its reason); 2 for a bad command line or a config file that cannot be read. The worker arms
its own death with the orchestrator that spawned it (``die_with_orchestrator``) first thing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from mnv1 import native_log
from mnv1.config import RunConfig, from_dict
from mnv1.data.types import Datasets
from mnv1.runlog import JsonlRunLog, RunLog, TimedRunLog
from mnv1.timing import (
    DATA,
    IMPORT,
    PHASES,
    PROCESS_START,
    TRACKING,
    WORKER_OTHER,
    PhaseRecorder,
    metric_name,
)
from mnv1.tracking import schema
from mnv1.worker_contract import (
    EXIT_FAILED,
    EXIT_FINISHED,
    EXIT_USAGE,
    die_with_orchestrator,
    spawn_seconds,
)

TRACEBACK_TEXT = schema.TRACEBACK_ARTIFACT


# What must run before ``exit_now`` ends the process (it skips ``atexit``): stopping the
# system-metrics monitor, which flushes its last samples.
BEFORE_EXIT: list[Callable[[], None]] = []


def make_run_log(spec: str, cfg: RunConfig) -> RunLog:
    """Build the run log named by ``spec`` (``jsonl:PATH`` or ``mlflow:RUN_ID``)."""
    kind, sep, value = spec.partition(":")
    if not sep or not value:
        raise ValueError(f"--run-log must be jsonl:PATH or mlflow:RUN_ID, got {spec!r}")
    if kind == "jsonl":
        return JsonlRunLog(Path(value))
    if kind == "mlflow":
        # Imported only here: mlflow lives behind tracking/, and a jsonl run never loads it.
        from mnv1.tracking import system_metrics
        from mnv1.tracking.runlog import MLflowRunLog

        mlflow_log = MLflowRunLog(run_id=value, uri=cfg.tracking.uri)
        # For the life of this process: the run's CPU, memory, disk, network and GPU samples.
        monitor = system_metrics.start(
            mlflow_log.uri, value, cfg.tracking.system_metrics_interval_s
        )
        if monitor is not None:
            BEFORE_EXIT.append(monitor.finish)  # exit_now skips atexit: stop and flush it there
        run_log: RunLog = mlflow_log
        return run_log
    raise ValueError(f"--run-log kind must be jsonl or mlflow, got {kind!r} in {spec!r}")


def load_config(path: Path) -> RunConfig:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"--config {path}: cannot read a JSON run config ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"--config {path}: expected a JSON object, got {type(data).__name__}")
    try:
        return from_dict(data)
    except TypeError as err:  # an unknown or misspelt key in a section
        raise ValueError(f"--config {path}: {err}") from err


def main(argv: Sequence[str] | None = None) -> int:
    die_with_orchestrator()
    phases = PhaseRecorder()
    started = spawn_seconds()
    if started is not None:
        phases.add(PROCESS_START, started)
    phases.begin(WORKER_OTHER)  # the outermost phase: what no other phase claims
    parser = argparse.ArgumentParser(
        prog="python -m mnv1.training.worker", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--config", required=True, type=Path, help="RunConfig as JSON (to_dict)")
    parser.add_argument(
        "--run-log",
        default=None,
        help="jsonl:PATH or mlflow:RUN_ID (default: jsonl:<config stem>.jsonl beside the config)",
    )
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        spec = args.run_log or f"jsonl:{args.config.with_suffix('.jsonl')}"
        with phases.measure(TRACKING):  # an mlflow run log imports mlflow
            run_log = make_run_log(spec, cfg)
    except (ValueError, ImportError) as err:
        print(f"mnv1.training.worker: {err}", file=sys.stderr)
        return EXIT_USAGE

    return run(cfg, run_log, phases=phases)


def run(
    cfg: RunConfig,
    run_log: RunLog,
    datasets_factory: Callable[[], Datasets] | None = None,
    phases: PhaseRecorder | None = None,
) -> int:
    """Bootstrap, train and report one run in this process; the exit status of ``main``.

    ``datasets_factory`` (default: the data layer from ``cfg.data``) is called after bootstrap,
    because building a dataset initialises TensorFlow's devices. ``phases`` (default: a fresh
    recorder) times the run; a finished run logs its totals as final metrics.
    """
    phases = phases or PhaseRecorder()
    if not phases.is_open(WORKER_OTHER):
        phases.begin(WORKER_OTHER)
    timed = TimedRunLog(run_log, phases)
    try:
        with phases.measure(IMPORT):
            # Imported here: TensorFlow takes seconds to import, not worth it for a bad
            # command line.
            from mnv1.training.bootstrap import bootstrap
            from mnv1.training.run import run_training

            bootstrap(cfg.distribute, cfg.train)
        datasets = None
        if datasets_factory is not None:
            with phases.measure(DATA):
                datasets = datasets_factory()
        result = run_training(cfg, timed, datasets=datasets, phases=phases)
    except Exception as err:
        text = traceback.format_exc()
        print(text, file=sys.stderr, end="")
        print(f"mnv1.training.worker: run failed: {type(err).__name__}: {err}", file=sys.stderr)
        try:
            run_log.log_text(TRACEBACK_TEXT, text)
        except Exception as log_err:  # the run log itself may be what failed
            print(f"mnv1.training.worker: could not log the traceback: {log_err}", file=sys.stderr)
        return EXIT_FAILED
    phases.end(WORKER_OTHER)
    try:
        # Every phase, zero where none was spent; process start only where an orchestrator
        # said when it spawned this process.
        timings = {metric_name(p): 0.0 for p in PHASES if p != PROCESS_START}
        run_log.log_metrics({**timings, **phases.metrics()})
    except Exception as err:  # the run itself is done and recorded; only its timings are lost
        print(f"mnv1.training.worker: could not log the phase timings: {err}", file=sys.stderr)
    print(
        f"mnv1.training.worker: finished: val_top1 {result.val_top1:.4f}, val_top5 "
        f"{result.val_top5:.4f}, "
        f"{result.train_images_per_sec:.1f} images/s, {result.replicas} replica(s)",
        flush=True,
    )
    return EXIT_FINISHED


def exit_now(code: int) -> NoReturn:
    """End this process with ``code`` without tearing the interpreter down.

    Once ``main`` has returned, everything the run produced is written: run log calls and
    checkpoints are synchronous, and files are closed. What is left is the interpreter's own
    teardown, which in a process that imported TensorFlow and trained takes seconds (a final
    garbage collection over TensorFlow's and Keras's objects, tf.data threads, native
    destructors): 2 to 7 s per cell measured on a busy 2-core CPU, against 0.05 s this way
    (``mnv1-bench sweep``, part ``process_exit``). So flush what Python buffers (stdio, logging
    handlers), run ``BEFORE_EXIT``, and leave with ``os._exit``; nothing registered with
    ``atexit`` runs.
    """
    for stop in BEFORE_EXIT:
        try:
            stop()
        except Exception as err:  # the run is recorded; only its last samples are lost
            print(f"mnv1.training.worker: at exit: {err}", file=sys.stderr)
    for stream in (sys.stdout, sys.stderr):
        # A closed or broken pipe: nothing left to save.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    logging.shutdown()
    os._exit(code)


def process_main(argv: Sequence[str] | None = None) -> NoReturn:
    """The whole life of a worker process: ``python -m mnv1.training.worker`` runs this, and so
    does a worker forked by the zygote (``mnv1.training.zygote``), with the same arguments."""
    # Ctrl-C reaches the whole process group, this worker included. Its orchestrator marks the
    # run KILLED and says so; here the default action (die by SIGINT, which the orchestrator reads
    # as KILLED) replaces Python's KeyboardInterrupt, whose traceback would only be noise.
    # Checkpoints are written whole or not at all, so a resume starts from the last one. (Where
    # SIGINT was ignored when the process started, as under nohup, it stays ignored.)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    # Quiet as the console script that started this worker asked (TF_CPP_MIN_LOG_LEVEL).
    native_log.install()
    exit_now(main(argv))


if __name__ == "__main__":
    process_main()
