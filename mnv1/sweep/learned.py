"""The plan's figures learned from this host's finished cells.

Every finished cell records where its time went (``mnv1.timing``), so the next plan on the same
host can start from what the last sweep really took instead of from the probe alone:

* **a cell seen before**: the newest finished cell of this host with the same shape and the same
  configuration where it decides the cost (``timing_identity``: the model, the data, the batch,
  the epochs, the evaluation, distribution, precision, checkpoints, export and what is tracked;
  not the training budget, the seed or the recipe's numbers) gives all of that cell's figures
  (``mnv1.sweep.figures``): its estimate for the same budget is exactly what it took;
* **any other cell**: the probe's figures (``mnv1.sweep.probe``), with the start-up (process
  start, imports) of this host's newest finished cells in place of the probe's, since start-up
  does not depend on the cell and is what changes when cells start differently (a warm
  process, another TensorFlow).

A run counts when it FINISHED on its first attempt, trained from scratch, and carries every
phase timing (``mnv1.tracking.timings``); its host is the orchestrator's (tag ``mnv1.host``).
"""

from __future__ import annotations

import socket
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mnv1.config import RunConfig, flatten, to_dict
from mnv1.sweep.figures import Figures, RunShape, cell_exit_s, eval_batches, from_metrics
from mnv1.timing import IMPORT, METRIC_CELL, PHASES, PROCESS_START, metric_name
from mnv1.tracking import schema
from mnv1.tracking.timings import FinishedCell

# Config entries that change what a cell costs besides its training budget.
TIMING_PREFIXES = ("model.", "data.", "distribute.", "export.")
TIMING_KEYS = frozenset(
    {
        "train.epochs",
        "train.batch_size",
        "train.precision",
        "train.jit_compile",
        "train.optimizer",
        "train.bn_recalibration_batches",
        "train.checkpoint_every_steps",
        "train.keep_checkpoints",
        "tracking.log_model",
        "tracking.system_metrics_interval_s",
    }
)
# Where the data lives changes nothing it costs.
NOT_TIMING = ("data.data_dir", "data.manual_dir")
# The start-up of other cells is the median of this many of the host's newest finished cells.
STARTUP_CELLS = 8


def timing_identity(flat: Mapping[str, Any]) -> dict[str, str]:
    """The entries of a flattened config (or a run's params) that decide its fixed costs and
    its step time, as strings (MLflow's params are strings)."""
    return {
        key: str(value)
        for key, value in flat.items()
        if (key.startswith(TIMING_PREFIXES) or key in TIMING_KEYS)
        and not key.startswith(NOT_TIMING)
    }


def _when(cell: FinishedCell) -> str:
    return datetime.fromtimestamp(cell.end_time / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _shape(cell: FinishedCell) -> RunShape | None:
    """The run's epochs × steps of its batch and its evaluation batches, or None when its
    params and tags do not say."""
    p, t = cell.params, cell.tags
    try:
        batch = int(p["train.batch_size"])
        val = int(cell.metrics[schema.METRIC_VAL_EXAMPLES])
        return RunShape(
            epochs=int(p["train.epochs"]),
            steps_per_epoch=int(t.get(schema.TAG_STEPS_PER_EPOCH) or p["train.steps_per_epoch"]),
            batch=batch,
            eval_batches=eval_batches(val, batch, int(p["train.bn_recalibration_batches"])),
        )
    except (KeyError, ValueError):
        return None


def _usable(cell: FinishedCell) -> bool:
    timed = [metric_name(p) for p in PHASES if p != PROCESS_START]
    return METRIC_CELL in cell.metrics and all(k in cell.metrics for k in timed)


@dataclass(frozen=True)
class LearnedCell:
    """The figures of one finished cell, and where they came from."""

    figures: Figures
    run_name: str
    when: str
    mult_adds: int | None


@dataclass(frozen=True)
class HostHistory:
    """This host's usable finished cells, newest first."""

    host: str
    cells: tuple[FinishedCell, ...]

    def match(self, cfg: RunConfig) -> LearnedCell | None:
        """The newest finished cell with ``cfg``'s timing identity, as figures."""
        wanted = timing_identity(flatten(to_dict(cfg)))
        for cell in self.cells:
            if timing_identity(cell.params) != wanted:
                continue
            shape = _shape(cell)
            if shape is None:
                continue
            mult_adds = cell.metrics.get(schema.METRIC_MULT_ADDS)
            return LearnedCell(
                from_metrics(cell.metrics, shape, cell_exit_s(cell.metrics)),
                cell.name,
                _when(cell),
                None if mult_adds is None else int(mult_adds),
            )
        return None

    def startup(self) -> Startup | None:
        """The median start-up of the newest ``STARTUP_CELLS`` cells, or None without any."""
        newest = self.cells[:STARTUP_CELLS]
        if not newest:
            return None
        seconds = [
            c.metrics.get(metric_name(PROCESS_START), 0.0) + c.metrics[metric_name(IMPORT)]
            for c in newest
        ]
        return Startup(statistics.median(seconds), len(newest), _when(newest[0]))


@dataclass(frozen=True)
class Startup:
    """A cell's start-up on this host, from its newest finished cells."""

    seconds: float
    cells: int
    newest: str


def history(cells: Sequence[FinishedCell], host: str) -> HostHistory:
    """The usable cells among ``cells`` (newest first), for ``host``."""
    return HostHistory(host, tuple(c for c in cells if _usable(c)))


def host_history(uri: str | None, host: str | None = None) -> HostHistory:
    """This host's finished cells in the store at ``uri`` (none where it does not exist)."""
    from mnv1.tracking.timings import finished_cells

    name = host or socket.gethostname()
    return history(finished_cells(name, uri), name)
