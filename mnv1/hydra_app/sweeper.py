"""``mnv1-train -m``'s sweeper: the whole grid composed and validated once, then launched.

Built as Hydra's sweepers are (``hydra.plugins.sweeper.Sweeper``: ``setup`` with the master
config, then ``sweep``, whose return value Hydra's ``multirun`` hands back), and expanding the
grid as ``BasicSweeper`` does (``mnv1.hydra_app.grid.expand``: the study's
``hydra.sweeper.params`` and the command line, crossed). What it adds:

* Every cell is composed once, converted to a RunConfig and validated before anything starts;
  ``prepare`` (``mnv1.cli.train``) refuses a bad grid (exit 2, no run, no directory), checks the
  cluster, the host and the tracking store, and prints the plan.
* The sweep's parent run is opened only then (``mnv1.hydra_app.callbacks.open_sweep``), and its
  identity reaches every job through ``hydra.job.env_set``, whatever the launcher.
* The launcher is handed those composed configs (``ComposedLoader``) instead of composing each
  cell again; local, joblib, SLURM and Ray launchers all ask their config loader for a job's
  config, so one launch composes each cell once.
* The outcome lands in the ``LaunchState`` that ``mnv1-train`` passed in, and is returned.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.config_loader import ConfigLoader
from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.object_type import ObjectType
from hydra.core.plugins import Plugins
from hydra.plugins.config_source import ConfigSource
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, RunMode, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from mnv1.hydra_app.callbacks import LaunchState, close_sweep, open_sweep
from mnv1.hydra_app.grid import Expansion, expand_master

if TYPE_CHECKING:
    from mnv1.sweep.lifecycle import SweepOutcome


class ComposedLoader(ConfigLoader):
    """The config loader a launcher gets: a cell's config is the one the sweeper composed and
    validated (a copy: the launcher sets the job's number on it); anything else is asked of
    Hydra's own loader. Plain data, so it travels with the launcher to joblib's workers and to
    SLURM and Ray jobs."""

    def __init__(self, loader: ConfigLoader, composed: dict[tuple[str, ...], DictConfig]) -> None:
        self.loader = loader
        self.composed = composed

    def load_sweep_config(
        self, master_config: DictConfig, sweep_overrides: list[str]
    ) -> DictConfig:
        found = self.composed.get(tuple(sweep_overrides))
        if found is None:
            return self.loader.load_sweep_config(master_config, sweep_overrides)
        cell = copy.deepcopy(found)
        # As Hydra's own loader does: the master's resolved values carry over, so
        # ``${now:...}`` in hydra.sweep.dir is the launch's one time and every job of the launch
        # shares its sweep directory (resolved again per job, each job got a folder of its own).
        OmegaConf.copy_cache(from_config=master_config, to_config=cell)
        return cell

    def load_configuration(
        self,
        config_name: str | None,
        overrides: list[str],
        run_mode: RunMode,
        from_shell: bool = True,
        validate_sweep_overrides: bool = True,
    ) -> DictConfig:
        return self.loader.load_configuration(
            config_name, overrides, run_mode, from_shell, validate_sweep_overrides
        )

    def get_search_path(self) -> ConfigSearchPath:
        return self.loader.get_search_path()

    def get_sources(self) -> list[ConfigSource]:
        return self.loader.get_sources()

    def list_groups(self, parent_name: str) -> list[str]:
        return self.loader.list_groups(parent_name)

    def get_group_options(
        self,
        group_name: str,
        results_filter: ObjectType | None = ObjectType.CONFIG,
        config_name: str | None = None,
        overrides: list[str] | None = None,
    ) -> list[str]:
        return self.loader.get_group_options(group_name, results_filter, config_name, overrides)

    def compute_defaults_list(
        self, config_name: str | None, overrides: list[str], run_mode: RunMode
    ) -> Any:
        return self.loader.compute_defaults_list(config_name, overrides, run_mode)


def with_env(config: DictConfig, env: dict[str, str]) -> None:
    """Add ``env`` to the job environment Hydra sets before a job runs (``hydra.job.env_set``)."""
    with read_write(config.hydra), open_dict(config.hydra):
        for key, value in env.items():
            config.hydra.job.env_set[key] = value


class GridSweeper(Sweeper):
    def __init__(
        self,
        state: LaunchState,
        prepare: Callable[[Expansion], Expansion],
        job_env: Mapping[str, str] | None = None,
    ) -> None:
        """``prepare`` takes the expanded grid, refuses it (SystemExit) or returns the grid to
        launch (the same, or with the budget a plan chose). ``job_env`` is set in every job
        beside the sweep's identity: a job on a Ray worker does not inherit this process's
        environment."""
        self.state = state
        self.prepare = prepare
        self.job_env = dict(job_env or {})
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.hydra_context, self.task_function, self.config = hydra_context, task_function, config

    def sweep(self, arguments: list[str]) -> SweepOutcome:
        """Launch the grid of the master config (whose task overrides are ``arguments``)."""
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        loader = self.hydra_context.config_loader
        grid = self.prepare(expand_master(loader, self.config, multirun=True))
        sweep = open_sweep(self.state, self.config, [cell.config for cell in grid.cells])
        # Every job gets the sweep's identity; the master carries it for the launcher itself
        # (a cluster launcher settling a dead job finds the sweep's runs through it).
        env = {**self.job_env, **sweep.env()}
        with_env(self.config, env)
        composed: dict[tuple[str, ...], DictConfig] = {}
        for cell in grid.cells:
            assert cell.composed is not None
            with_env(cell.composed, env)
            composed[tuple(cell.overrides)] = cell.composed
        # As BasicSweeper: the sweep's folder and the master config, before any job.
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        launcher = Plugins.instance().instantiate_launcher(
            hydra_context=HydraContext(
                config_loader=ComposedLoader(loader, composed),
                callbacks=self.hydra_context.callbacks,
            ),
            task_function=self.task_function,
            config=self.config,
        )
        jobs: Sequence[Sequence[str]] = [cell.overrides for cell in grid.cells]
        for result in launcher.launch(jobs, initial_job_idx=0):
            # As BasicSweeper: a job that raised raises here (a cell's own failure does not:
            # the task function returns it as the cell's status).
            _ = result.return_value
        close_sweep(self.state)
        assert self.state.outcome is not None
        return self.state.outcome
