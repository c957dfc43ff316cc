"""``mnv1-train``: one run, or with ``-m`` a sweep, as a Hydra application.

    mnv1-train                                   one run of the default config
    mnv1-train model.alpha=0.5 model.resolution=160
    mnv1-train -m experiment=demo                a study's grid (experiments/demo.yaml)
    mnv1-train -m experiment=smoke hydra/launcher=joblib hydra.launcher.n_jobs=2

``main`` composes the master config once (every override it cannot apply is listed), and its sweeper
(``mnv1.hydra_app.sweeper``) composes every cell of the grid once, converts it to a RunConfig and
validates it before anything runs; if anything is wrong it lists every problem (key, value, what is
allowed) and exits with code 2, having created no run, no output directory and no TensorFlow
context. The launcher then runs the cells composed there. A sweep on a cluster launcher (SLURM, Ray)
also stops there, exit code 2, when the cluster does not answer (``mnv1.launchers.cluster_check``);
a tracking server that is down or refuses the credentials stops it the same way (exit code 3),
within seconds. So does a host that cannot train the grid (a multi-worker ``TF_CONFIG``, fewer GPUs
than ``distribute.gpus_per_run``: ``mnv1.training.host``), exit code 2. Then the launcher runs the
jobs: each orchestrates one cell (``mnv1.sweep.orchestrate.run_cell``), which trains in a child
process. A sweep returns normally whatever its jobs did; ``main`` reads the outcome from the
launch's ``LaunchState`` and exits 1 if any cell did not finish.

Ctrl-C (SIGINT) or SIGTERM at any moment (``mnv1.interrupt``: validation, the probe, the
tracking store, the dataset, a cell, the report) stops what runs (the probe's or the cell's
worker); a cell's run and the sweep's parent end KILLED, one line names the cells marked KILLED
and the command that resumes them, and ``main`` exits 130 (SIGTERM: 143) without a traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import hydra
from hydra._internal.callbacks import Callbacks
from hydra._internal.hydra import Hydra
from hydra._internal.utils import get_args_parser, run_and_report
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import configure_log
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf

from mnv1 import interrupt
from mnv1.cli import quiet_tensorflow, without_verbose
from mnv1.cli.credentials import without_credentials as _without_credentials
from mnv1.cli.plan import PlanError, planned, print_problems
from mnv1.hydra_app import store as _store  # noqa: F401  (registers the schema and the studies)
from mnv1.hydra_app.callbacks import LaunchState
from mnv1.hydra_app.grid import (
    CONFIG_MODULE,
    CONFIG_NAME,
    Expansion,
    compose_master,
    expand_master,
    make_hydra,
    to_run_config,
    with_overrides,
)
from mnv1.hydra_app.sweeper import GridSweeper

if TYPE_CHECKING:
    from mnv1.sweep.lifecycle import SweepOutcome

EXIT_INVALID = 2
EXIT_FAILED = 1
EXIT_UNREACHABLE = 3
# The settings that keep TensorFlow's and MLflow's own output out of the cell logs.
QUIET_ENV = ("TF_CPP_MIN_LOG_LEVEL", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
# hydra.main names the jobs of an application after its file: train.log in each job's folder.
TASK_NAME = "train"


@dataclass
class CellTask:
    """The task function: one Hydra job is one cell, trained in a child process; returns the
    run's final status. A failure inside training is the cell's result, not the job's: the job
    returns normally so the launcher goes on to the other cells.

    In this process (the local launcher, a single run) it records each outcome in the launch's
    state and prints the progress line; a copy in another process (joblib, SLURM, Ray) trains
    its cell and reports through the tracking store only.
    """

    state: LaunchState = field(default_factory=LaunchState)

    def __call__(self, cfg: DictConfig) -> str:
        from mnv1.sweep.orchestrate import SweepRef, run_cell

        interrupt.phase("cell")
        outcome = run_cell(
            to_run_config(cfg), SweepRef.from_env(), Path(HydraConfig.get().runtime.output_dir)
        )
        self.state.cells.append(outcome)
        if self.state.progress is not None:
            from mnv1.sweep.plan_record import cell_line

            line = cell_line(self.state.progress, outcome, SweepRef.from_env(), sys.stdout.isatty())
            print(line, flush=True)
        return outcome.status

    def __getstate__(self) -> dict[str, Any]:
        return {"state": LaunchState()}


def _job(cfg: DictConfig) -> str:
    """One cell, as ``hydra.main`` sees the application (its --help, --cfg and --info)."""
    return CellTask()(cfg)


_app = hydra.main(version_base="1.3", config_path=CONFIG_MODULE, config_name=CONFIG_NAME)(_job)


def _informational(args: object) -> bool:
    """Commands that only print (help, --cfg, --info, shell completion) and run nothing."""
    return any(
        getattr(args, name, None)
        for name in ("help", "hydra_help", "cfg", "info", "shell_completion", "experimental_rerun")
    )


def _exit_code(state: LaunchState) -> int:
    """A single run's exit code: 1 unless its cell FINISHED."""
    return EXIT_FAILED if any(c.status != "FINISHED" for c in state.cells) else 0


def _check_tracking(uri: str | None) -> None:
    """Stop before anything starts when the tracking server cannot be used: otherwise the data
    is prepared and every cell fails on its own after MLflow's minutes of retries."""
    from mnv1.tracking.store import TrackingUnreachableError, check_reachable

    try:
        check_reachable(uri)
    except TrackingUnreachableError as exc:
        print(f"mnv1-train: {exc}. Nothing was started.", file=sys.stderr)
        sys.exit(EXIT_UNREACHABLE)


def _check_host(expansion: Expansion) -> None:
    """Stop before anything starts when this host cannot train the grid (``mnv1.training.host``):
    otherwise the worker of each cell refuses it, after its run and the sweep's were opened."""
    from mnv1.launchers.cluster_check import RAY_LAUNCHERS, SLURM_LAUNCHERS
    from mnv1.sweep.gpu_slots import visible_gpus
    from mnv1.training.host import grid_host_problems

    launcher = (expansion.launcher or "").rsplit(".", 1)[-1]
    elsewhere = expansion.multirun and launcher in (*SLURM_LAUNCHERS, *RAY_LAUNCHERS)
    cells = [cell.config for cell in expansion.cells]
    problems = grid_host_problems(cells, None if elsewhere else visible_gpus())
    if problems:
        print(
            f"mnv1-train: this host cannot train the {'grid' if expansion.multirun else 'run'}; "
            "nothing was started:",
            file=sys.stderr,
        )
        for line in problems:
            print(f"  - {line}", file=sys.stderr)
        sys.exit(EXIT_INVALID)


def _interrupted(arguments: Sequence[str], state: LaunchState, signum: int) -> NoReturn:
    """Ctrl-C (or SIGTERM): end the sweep KILLED, say in one short message which cells stand
    KILLED and how to resume them, and exit 128 + ``signum`` without a traceback."""
    # A second Ctrl-C while the runs are being closed would leave them RUNNING: finish first.
    interrupt.ignore()
    _end_unfinished_sweep(state, "KILLED")
    killed = _killed_cells(state)
    what = f"marked KILLED: {', '.join(killed)}" if killed else "no cell had started"
    # The same command resumes (tracking.rerun=true would start the runs afresh instead), with
    # what the launch added to it (the study's seeds, a chosen budget).
    resume = shlex.join(
        ["mnv1-train", *(a for a in [*arguments, *state.added] if "tracking.rerun=" not in a)]
    )
    interrupt.stop("mnv1-train", what, f"Resume with: {resume}", signum)


def _killed_cells(state: LaunchState) -> list[str]:
    """Names of the cells whose newest run now stands KILLED (what a relaunch resumes)."""
    cells = state.grid
    if not cells:
        return []
    from mnv1.config import cell_name
    from mnv1.run_key import run_key
    from mnv1.tracking import runs
    from mnv1.tracking.store import find_experiment, resolve_uri

    if state.sweep is not None:
        uri, experiment_id = state.sweep.uri, state.sweep.experiment_id
    else:
        uri = resolve_uri(cells[0].tracking.uri)
        found = find_experiment(uri, cells[0].tracking.experiment)
        if found is None:
            return []
        experiment_id = found
    states = runs.cell_states(uri, experiment_id, [run_key(c) for c in cells])
    return [cell_name(c) for c in cells if states[run_key(c)].status == runs.KILLED]


def main(argv: Sequence[str] | None = None) -> None:
    quiet_tensorflow(argv)  # first: before anything below imports TensorFlow
    # Then: a signal at any later moment (validation, the probe, the store, the data, a cell,
    # the report) ends the launch through the one path below (mnv1.interrupt).
    interrupt.install()
    # --verbose (TensorFlow's own log lines, see mnv1.cli) is not an override: Hydra never sees it.
    arguments = _without_credentials(without_verbose(sys.argv[1:] if argv is None else argv))
    args = get_args_parser().parse_args(arguments)
    # Quiet defaults for this process and the cell workers it starts (a user's own setting wins):
    # MLflow's per-artifact progress bars drown the cell logs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if _informational(args):
        sys.argv = [sys.argv[0], *arguments]
        _app()
        return
    state = LaunchState()
    try:
        code = _launch(args, state)
        # A signal whose KeyboardInterrupt Python dropped (raised inside a GC callback) still
        # ends the launch as an interrupt, never as a success.
        interrupt.check()
    except KeyboardInterrupt as exc:
        _interrupted(arguments, state, interrupt.signum_of(exc))
    except BaseException:
        _end_unfinished_sweep(state, "FAILED")
        raise
    if _end_unfinished_sweep(state, "FAILED"):
        sys.exit(EXIT_FAILED)
    sys.exit(code)


def _launch(args: argparse.Namespace, state: LaunchState) -> int:
    """Compose the master config once, then run the one cell or sweep the grid; the exit code."""
    interrupt.phase("validation")
    hydra_app = make_hydra(args.config_path, args.config_dir, task_name=TASK_NAME)
    name = args.config_name or CONFIG_NAME
    master = compose_master(
        hydra_app, args.overrides, multirun=bool(args.multirun), config_name=name
    )
    if master.errors:
        # Every problem at once: those of the overrides Hydra could not apply, and those of the
        # grid composed without them.
        found = (
            []
            if master.config is None
            else expand_master(hydra_app.config_loader, master.config, master.multirun).errors
        )
        print_problems("mnv1-train", master.errors + found)
        sys.exit(EXIT_INVALID)
    assert master.config is not None
    if master.multirun:
        return _sweep(hydra_app, name, master.config, args, state)
    return _run(hydra_app, name, master.config, args, state)


def _sweep(
    hydra_app: Hydra, name: str, master: DictConfig, args: argparse.Namespace, state: LaunchState
) -> int:
    """What ``Hydra.multirun`` does with a composed master config, with mnv1's sweeper: it
    composes and validates every cell once, launches them, and returns the sweep's outcome."""
    callbacks = Callbacks(master)
    # The quiet defaults main() set reach the jobs wherever they run (a Ray worker does not
    # inherit this environment).
    quiet = {k: os.environ[k] for k in QUIET_ENV if k in os.environ}
    sweeper = GridSweeper(state, lambda grid: _prepare_launch(args, grid, state, master), quiet)
    sweeper.setup(
        hydra_context=HydraContext(config_loader=hydra_app.config_loader, callbacks=callbacks),
        task_function=CellTask(state),
        config=master,
    )
    callbacks.on_multirun_start(config=master, config_name=name)
    task_overrides = OmegaConf.to_container(master.hydra.overrides.task, resolve=False)
    assert isinstance(task_overrides, list)
    outcome: SweepOutcome = run_and_report(
        lambda: sweeper.sweep(arguments=[str(a) for a in task_overrides])
    )
    callbacks.on_multirun_end(config=master, config_name=name)
    # Hydra's sweep returns normally whatever its jobs did: the outcome says.
    return EXIT_FAILED if outcome.failed else 0


def _run(
    hydra_app: Hydra, name: str, master: DictConfig, args: argparse.Namespace, state: LaunchState
) -> int:
    """One run: validated and checked like a sweep's cells, then run by Hydra as ``hydra.main``
    runs it (its own composition, logging and output folder)."""
    _prepare_launch(args, expand_master(hydra_app.config_loader, master, False), state, None)
    overrides = [*args.overrides, *state.added, "hydra.mode=RUN"]
    run_and_report(
        lambda: hydra_app.run(name, CellTask(state), overrides, with_log_configuration=True)
    )
    return _exit_code(state)


def _prepare_launch(
    args: argparse.Namespace, expansion: Expansion, state: LaunchState, master: DictConfig | None
) -> Expansion:
    """Refuse a bad grid (exit 2), check the cluster, the host and the tracking store, print the
    plan; the grid to launch (with the budget a plan chose)."""
    if expansion.errors:
        print_problems("mnv1-train", expansion.errors)
        sys.exit(EXIT_INVALID)
    if expansion.multirun:
        from mnv1.launchers.cluster_check import cluster_problem

        problem = cluster_problem(expansion.launcher, expansion.ray_address)
        if problem is not None:
            print(f"mnv1-train: {problem}; nothing was started", file=sys.stderr)
            sys.exit(EXIT_INVALID)
    _check_host(expansion)
    _check_tracking(expansion.cells[0].config.tracking.uri)
    kind = "grid" if expansion.multirun else "run"
    print(f"mnv1-train: {len(expansion.cells)} cell(s) validated; starting the {kind}", flush=True)
    if expansion.added:
        # The study's `seeds: N`, part of the grid validated above.
        print(f"mnv1-train: the study's seeds add {' '.join(expansion.added)}", flush=True)
        state.added += expansion.added
    interrupt.phase("probe")
    expansion = _plan(args, expansion, state)
    # The cells a Ctrl-C from here on may leave KILLED (before: none had started).
    state.grid = [cell.config for cell in expansion.cells]
    if master is not None:
        # Hydra's logging from here on, as Hydra's multirun sets it up on composing: the lines
        # above (problems, plan) come before it, as they did before Hydra's own launch.
        configure_log(master.hydra.hydra_logging, master.hydra.verbose)
    return expansion


def _plan(args: argparse.Namespace, expansion: Expansion, state: LaunchState) -> Expansion:
    """Print the plan of a sweep (or of a run whose budget is chosen by a wall-time target)
    before its first cell; return the grid with the budget it chose, if any."""
    cells = [c.config for c in expansion.cells]
    budget = any(
        c.train.target_minutes is not None and c.train.steps_per_epoch is None for c in cells
    )
    if not (expansion.multirun or budget):
        return expansion
    from mnv1.sweep.plan import SweepProgress, format_plan

    def check(items: list[str]) -> Expansion:
        # ``planned`` validates the command with the chosen budget appended: the grid composed
        # above, with the budget applied to each cell (no second composition).
        return with_overrides(expansion, items[len(args.overrides) :])

    try:
        result = planned(args.overrides, expansion, check=check)
    except PlanError as exc:
        print(f"mnv1-train: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    print(format_plan(result.plan), end="", flush=True)
    if result.probe_error:
        print(f"mnv1-train: no estimate, the probe failed: {result.probe_error}", file=sys.stderr)
    state.plan, state.plan_seconds = result.plan, result.seconds
    state.progress = SweepProgress(
        result.plan.estimates(), total=len(result.plan.cells), launch_s=result.plan.launch_s
    )
    state.added += result.overrides
    return result.expansion


def _end_unfinished_sweep(state: LaunchState, status: str) -> bool:
    """End the parent of a sweep that stopped before its end; True if there was one."""
    if state.sweep is None or state.outcome is not None:
        return False
    from mnv1.sweep.lifecycle import abort_sweep

    abort_sweep(state.sweep, status)
    return True


if __name__ == "__main__":
    main()
