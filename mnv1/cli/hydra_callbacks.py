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

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mnv1.config import RunConfig

if TYPE_CHECKING:
    from mnv1.orchestrate import CellOutcome, SweepRef
    from mnv1.sweep import SweepOutcome

log = logging.getLogger(__name__)


@dataclass
class LaunchState:
    """What this process launched and how it ended (read by ``mnv1.cli.train.main``)."""

    sweep: SweepRef | None = None
    grid: list[RunConfig] = field(default_factory=list)
    outcome: SweepOutcome | None = None
    cells: list[CellOutcome] = field(default_factory=list)


STATE = LaunchState()


def _sweep_config_text(config: DictConfig) -> str:
    """The resolved base config plus the sweep definition, as logged on the parent run."""
    task = OmegaConf.to_container(config, resolve=True, throw_on_missing=False)
    assert isinstance(task, dict)
    hydra = task.pop("hydra", {})
    record = {
        "config": task,
        "sweep": {
            "params": hydra.get("sweeper", {}).get("params"),
            "overrides": hydra.get("overrides", {}),
            "launcher": hydra.get("launcher", {}).get("_target_"),
        },
    }
    return OmegaConf.to_yaml(OmegaConf.create(record))


class SweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mnv1.cli.hydra_grid import cells_of
        from mnv1.sweep import start_sweep

        cells = cells_of(config)
        launcher = str(OmegaConf.select(config, "hydra.launcher._target_", default="")).rsplit(
            ".", 1
        )[-1]
        sweep = start_sweep(cells, _sweep_config_text(config), launcher)
        STATE.sweep, STATE.grid = sweep, cells
        overrides = config.hydra.overrides.hydra
        for key, value in sweep.env().items():
            quoted = value.replace("\\", "\\\\").replace("'", "\\'")
            overrides.append(f"++hydra.job.env_set.{key}='{quoted}'")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from mnv1.sweep import finish_sweep

        if STATE.sweep is None:
            return
        outcome = finish_sweep(STATE.sweep, STATE.grid)
        STATE.outcome = outcome
        failed = len(outcome.failed)
        verdict = (
            "all cells FINISHED"
            if not failed
            else f"{failed} of {len(outcome.states)} cells did not finish"
        )
        print(
            f"\nSweep {STATE.sweep.sweep_key} ({verdict}); parent run {STATE.sweep.parent_run_id}\n"
        )
        print(outcome.matrix, flush=True)

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from mnv1.cli.hydra_grid import to_run_config
        from mnv1.sweep import prepare_data

        # A single run prepares its dataset here, in the launching process, like a sweep does.
        prepare_data([to_run_config(config)])
