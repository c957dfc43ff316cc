"""Hydra callbacks that bracket a sweep: its parent run at the start, its status matrix at the end.

``on_multirun_start`` runs once, in the launching process, before the sweeper creates any job:
it opens the sweep's parent MLflow run (or reuses it on a relaunch), prepares the dataset, and
hands the parent's identity to every job through ``hydra.job.env_set``. Jobs compose their config
from the master config's Hydra overrides whatever the launcher (local, joblib, SLURM, Ray), so
appending the environment there reaches all of them.

``on_multirun_end`` prints and logs the α × ρ status matrix and ends the parent. The outcome is
kept in ``STATE`` for ``mnv1-train`` to turn into its exit code, since Hydra returns normally from
a multirun whatever its jobs did.
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
    """What this process launched and how it ended (read by ``mnv1.cli.train.main``)."""

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


STATE = LaunchState()


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
    the cells without their parent run; SystemExit is not an Exception, so it stops the launch
    and ``mnv1-train`` ends the parent (if one was opened) on its way out.
    """
    log.error("the sweep could not %s", stage, exc_info=exc)
    raise SystemExit(f"mnv1-train: the sweep could not {stage}: {type(exc).__name__}: {exc}")


class SweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            self._start(config)
        except Exception as exc:
            _abort("start", exc)

    def _start(self, config: DictConfig) -> None:
        from mnv1.hydra_app.grid import cells_of
        from mnv1.sweep.lifecycle import start_sweep

        cells = cells_of(config)
        target = OmegaConf.select(config, "hydra.launcher._target_", default="")
        sweep = start_sweep(cells, _sweep_config_text(config), str(target).rsplit(".", 1)[-1])
        STATE.sweep, STATE.grid = sweep, cells
        # Every job composes its config from these overrides, whatever the launcher.
        overrides = config.hydra.overrides.hydra
        for key, value in sweep.env().items():
            quoted = value.replace("\\", "\\\\").replace("'", "\\'")
            overrides.append(f"++hydra.job.env_set.{key}='{quoted}'")
        if STATE.plan is not None:
            from mnv1.sweep.plan_record import record_estimate

            record_estimate(sweep, STATE.plan, STATE.plan_seconds)
        if STATE.progress is not None:
            from mnv1.sweep.plan_record import to_train

            STATE.to_train = to_train(sweep, STATE.progress.estimates)
            STATE.progress.start()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if STATE.sweep is None:
            return
        try:
            self._finish()
        except Exception as exc:
            _abort("finish", exc)

    def _finish(self) -> None:
        from mnv1.sweep.lifecycle import finish_sweep, runs_hint

        assert STATE.sweep is not None
        # A relaunch that only skipped finished cells has no actual to set beside the estimate.
        if STATE.progress is not None and STATE.progress.estimated_s > 0:
            from mnv1.sweep.plan_record import record_actual

            progress = STATE.progress
            record_actual(STATE.sweep, progress.clock() - progress.started, progress.estimated_s)
        elif STATE.progress is not None and not STATE.progress.done:
            # No cell reported here: a parallel launcher ran them in other processes.
            from mnv1.sweep.plan_record import record_parallel_actual

            record_parallel_actual(STATE.sweep, STATE.progress, STATE.to_train)
        outcome = finish_sweep(STATE.sweep, STATE.grid)
        STATE.outcome = outcome
        failed = len(outcome.failed)
        total = len(outcome.states)
        verdict = (
            "all cells FINISHED" if not failed else f"{failed} of {total} cells did not finish"
        )
        sweep = STATE.sweep
        print(f"\nSweep {sweep.sweep_key}: {verdict}; parent run {sweep.parent_run_id}\n")
        print(outcome.matrix)
        # The last lines of a sweep: where to look at it.
        print(f"Runs: {outcome.runs_url}  ({runs_hint(sweep.uri)})")
        print(outcome.report, flush=True)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mnv1.hydra_app.grid import to_run_config
        from mnv1.sweep.lifecycle import prepare_data

        # A single run prepares its dataset here, in the launching process, like a sweep does.
        try:
            prepare_data([to_run_config(config)])
        except Exception as exc:
            _abort("prepare its data", exc)
