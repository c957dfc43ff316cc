"""Where a run's wall time goes: a small recorder of named phases, and a run log that times itself.

``mnv1-bench sweep`` breaks a sweep's wall time into process start, TensorFlow import, data,
model build, training, evaluation, checkpoints and tracking. Each worker measures its own phases
with one ``PhaseRecorder``::

    phases = PhaseRecorder()
    with phases.measure("build"):
        model = build(...)

Phases nest, and every second is counted once, in the innermost open phase: a run log call made
while building the model counts as ``tracking``, and ``build`` gets the rest. So the totals of
one recorder add up to the time spent inside its outermost phases, never more.

The worker logs the totals as final metrics ``time_<phase>_s`` (``metric_name``). This module
imports nothing heavy: the worker uses it before TensorFlow is imported.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

# Phase names, in the order a run goes through them (metric ``time_<phase>_s`` each).
PROCESS_START = "process_start"  # spawn to the worker's first line: interpreter and imports
IMPORT = "import"  # TensorFlow and Keras import, bootstrap, strategy (device initialisation)
DATA = "data"  # building the tf.data pipelines, filling their in-memory caches
BUILD = "build"  # model build, compile, cost counting, model summary
TRACE = "trace"  # each fit's first training step: tracing the train step, starting the input
TRAIN = "train"  # every other training step (including waiting for input)
EVALUATE = "evaluate"  # validation passes, BatchNorm re-estimation included
CHECKPOINT = "checkpoint"  # restoring and writing checkpoints
TRACKING = "tracking"  # inside run log calls (and creating the run log: importing mlflow)
WORKER_OTHER = "worker_other"  # the rest of the worker's life before its final metrics
PHASES: tuple[str, ...] = (
    PROCESS_START,
    IMPORT,
    DATA,
    BUILD,
    TRACE,
    TRAIN,
    EVALUATE,
    CHECKPOINT,
    TRACKING,
    WORKER_OTHER,
)

# Orchestrator-side metrics on a cell run: the whole cell (``run_cell``) and the worker process
# (spawn to exit) as the orchestrator saw them.
METRIC_CELL = "time_cell_s"
METRIC_WORKER_WALL = "time_worker_wall_s"
# Sweep-level metrics on the parent run.
METRIC_SWEEP_START = "time_sweep_start_s"  # start_sweep as a whole
METRIC_PREPARE = "time_prepare_s"  # of which preparing the dataset(s)
METRIC_SWEEP_FINISH = "time_sweep_finish_s"  # finish_sweep: status matrix and the report
METRIC_REPORT = "time_report_s"  # of which the report
METRIC_PLAN = "time_plan_s"  # the plan before the first cell (its probe, when not cached)


def metric_name(phase: str) -> str:
    return f"time_{phase}_s"


class PhaseRecorder:
    """Exclusive seconds per named phase (see the module docstring for nesting)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.totals: dict[str, float] = {}
        # Open phases, innermost last: [name, start, seconds spent in phases nested inside].
        self._open: list[list[Any]] = []

    def begin(self, name: str) -> None:
        self._open.append([name, self.clock(), 0.0])

    def end(self, name: str) -> None:
        """Close ``name``, the innermost open phase of that name.

        Phases opened inside it and never closed (a Keras callback whose ``end`` hook did not
        run because an exception went through) are closed with it, so one missed hook cannot
        corrupt the other totals. Closing a phase that is not open is an error.
        """
        if not any(entry[0] == name for entry in self._open):
            open_names = [entry[0] for entry in self._open]
            raise ValueError(f"phase {name!r} is not open (open phases: {open_names})")
        now = self.clock()
        while True:
            entry_name, start, nested = self._open.pop()
            elapsed = now - start
            self.add(entry_name, elapsed - nested)
            if self._open:
                self._open[-1][2] += elapsed
            if entry_name == name:
                return

    def is_open(self, name: str) -> bool:
        return any(entry[0] == name for entry in self._open)

    @contextlib.contextmanager
    def measure(self, name: str) -> Iterator[None]:
        self.begin(name)
        try:
            yield
        finally:
            self.end(name)

    def add(self, name: str, seconds: float) -> None:
        """Count ``seconds`` measured elsewhere (e.g. across processes) into ``name``."""
        self.totals[name] = self.totals.get(name, 0.0) + seconds

    def metrics(self) -> dict[str, float]:
        """The totals as run-log metrics: ``{"time_<phase>_s": seconds}``."""
        return {metric_name(name): seconds for name, seconds in self.totals.items()}
