"""What brackets a launch: the sweep's parent run at the start, its status matrix at the end.

``open_sweep`` runs once, in the launching process, after the sweeper (``mnv1.hydra_app.sweeper``)
has composed and validated the whole grid and before any job starts: it opens the sweep's parent
MLflow run (or reuses it on a relaunch) and prepares the dataset. ``close_sweep`` prints and logs
the α × ρ status matrix and ends the parent. Both record what they did in the ``LaunchState``
that ``mnv1-train`` hands its sweeper and reads afterwards for its exit code (Hydra's sweep
returns normally whatever its jobs did), or to end the parent KILLED on Ctrl-C.

``RunCallback`` is the Hydra callback of a single run (``conf/config.yaml``): it prepares the
run's dataset in the launching process before the job starts, as a sweep does.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from mnv1.config import RunConfig

if TYPE_CHECKING:
    from mnv1.sweep.lifecycle import SweepOutcome
    from mnv1.sweep.orchestrate import CellOutcome, SweepRef
    from mnv1.sweep.plan import Plan, SweepProgress

log = logging.getLogger(__name__)


@dataclass
class LaunchState:
    """What one launch started and how it ended: filled by the sweeper and the task function,
    read by ``mnv1.cli.train.main`` (one object per launch, handed to both)."""

    sweep: SweepRef | None = None
    grid: list[RunConfig] = field(default_factory=list)
    outcome: SweepOutcome | None = None
    cells: list[CellOutcome] = field(default_factory=list)
    plan: Plan | None = None
    plan_seconds: float = 0.0
    """The plan printed before the first cell (``mnv1.cli.plan``), recorded on the parent."""
    progress: SweepProgress | None = None
    """One line per finished cell (sequential launchers: a parallel job runs elsewhere)."""
    to_train: list[str] = field(default_factory=list)
    """Run keys without a FINISHED run as the sweep started: what a parallel launch trains."""
    added: list[str] = field(default_factory=list)
    """Overrides the launch added to the command line (the study's seeds, a chosen budget):
    the command that resumes an interrupted launch names them."""


def _sweep_config_text(config: DictConfig) -> str:
    """The resolved base config plus the sweep definition, as logged on the parent run.

    Only the task part is resolved: parts of Hydra's own node (the job number, its output
    directory) exist only inside a job.
    """
    task = copy.deepcopy(config)
    with open_dict(task):
        del task["hydra"]
    hydra = config.hydra
    record = {
        "config": OmegaConf.to_container(task, resolve=True),
        "sweep": {
            "params": OmegaConf.to_container(hydra.sweeper.params, resolve=False)
            if hydra.sweeper.get("params")
            else None,
            "overrides": OmegaConf.to_container(hydra.overrides, resolve=False),
            "launcher": OmegaConf.select(hydra, "launcher._target_", default=None),
        },
    }
    return OmegaConf.to_yaml(OmegaConf.create(record))


def _abort(stage: str, exc: Exception) -> NoReturn:
    """Stop the launch from inside a callback.

    Hydra turns an Exception raised by a callback into a warning and carries on, which would run
    the cells without their parent run, and reports any other Exception with a traceback;
    SystemExit is not an Exception, so it stops the launch and ``mnv1-train`` ends the parent (if
    one was opened) on its way out.
    """
    log.error("the sweep could not %s", stage, exc_info=exc)
    raise SystemExit(f"mnv1-train: the sweep could not {stage}: {type(exc).__name__}: {exc}")


def open_sweep(state: LaunchState, config: DictConfig, cells: list[RunConfig]) -> SweepRef:
    """Open (or reuse) the sweep's parent run for the validated ``cells``, prepare the data,
    record the plan; stops the launch (SystemExit) if any of it fails."""
    try:
        return _start(state, config, cells)
    except Exception as exc:
        _abort("start", exc)


def _start(state: LaunchState, config: DictConfig, cells: list[RunConfig]) -> SweepRef:
    from mnv1.sweep.lifecycle import start_sweep

    target = OmegaConf.select(config, "hydra.launcher._target_", default="")
    sweep = start_sweep(cells, _sweep_config_text(config), str(target).rsplit(".", 1)[-1])
    state.sweep, state.grid = sweep, cells
    if state.plan is not None:
        from mnv1.sweep.plan_record import record_estimate

        record_estimate(sweep, state.plan, state.plan_seconds)
    if state.progress is not None:
        from mnv1.sweep.plan_record import to_train

        state.to_train = to_train(sweep, state.progress.estimates)
        state.progress.start()
    return sweep


def close_sweep(state: LaunchState) -> None:
    """Record the actual wall time, end the parent run, print the status matrix."""
    try:
        _finish(state)
    except Exception as exc:
        _abort("finish", exc)


def _finish(state: LaunchState) -> None:
    from mnv1.sweep.lifecycle import finish_sweep, runs_hint

    assert state.sweep is not None
    # A relaunch that only skipped finished cells has no actual to set beside the estimate.
    if state.progress is not None and state.progress.estimated_s > 0:
        from mnv1.sweep.plan_record import record_actual

        progress = state.progress
        record_actual(state.sweep, progress.clock() - progress.started, progress.estimated_s)
    elif state.progress is not None and not state.progress.done:
        # No cell reported here: a parallel launcher ran them in other processes.
        from mnv1.sweep.plan_record import record_parallel_actual

        record_parallel_actual(state.sweep, state.progress, state.to_train)
    outcome = finish_sweep(state.sweep, state.grid)
    state.outcome = outcome
    failed = len(outcome.failed)
    total = len(outcome.states)
    verdict = "all cells FINISHED" if not failed else f"{failed} of {total} cells did not finish"
    sweep = state.sweep
    print(f"\nSweep {sweep.sweep_key}: {verdict}; parent run {sweep.parent_run_id}\n")
    print(outcome.matrix)
    # The last lines of a sweep: where to look at it.
    print(f"Runs: {outcome.runs_url}  ({runs_hint(sweep.uri)})")
    print(outcome.report, flush=True)


class RunCallback(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mnv1.hydra_app.grid import to_run_config
        from mnv1.sweep.lifecycle import prepare_data

        # A single run prepares its dataset here, in the launching process, like a sweep does.
        try:
            prepare_data([to_run_config(config)])
        except Exception as exc:
            _abort("prepare its data", exc)
