"""``mnv1-train``: one run, or with ``-m`` a sweep, as a Hydra application.

    mnv1-train                                   one run of the default config
    mnv1-train model.alpha=0.5 model.resolution=160
    mnv1-train -m experiment=demo                a study's grid (experiments/demo.yaml)
    mnv1-train -m experiment=smoke hydra/launcher=joblib hydra.launcher.n_jobs=2

Before Hydra runs anything, ``main`` composes the config and expands the whole grid exactly as
the sweeper will, converts every cell to a RunConfig and validates it; if anything is wrong it
lists every problem (key, value, what is allowed) and exits with code 2, having created no run,
no output directory and no TensorFlow context. A sweep on a cluster launcher (SLURM, Ray) also
stops there, exit code 2, when the cluster does not answer (``mnv1.launchers.cluster_check``); a
tracking server that is down or refuses the credentials stops it the same way (exit code 3),
within seconds. So does a host that cannot train the grid (a multi-worker ``TF_CONFIG``, fewer
GPUs than ``distribute.gpus_per_run``: ``mnv1.training.host``), exit code 2. Then Hydra runs:
each job orchestrates one cell (``mnv1.sweep.orchestrate.run_cell``), which trains in a child
process. Hydra returns normally from a multirun whatever its jobs did, so ``main`` exits 1
afterwards if any cell did not finish.

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
from pathlib import Path
from typing import NoReturn

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from mnv1 import interrupt
from mnv1.cli import quiet_tensorflow, without_verbose
from mnv1.cli.credentials import without_credentials as _without_credentials
from mnv1.cli.plan import PlanError, planned, print_problems
from mnv1.config import RunConfig
from mnv1.hydra_app import store as _store  # noqa: F401  (registers the schema and the studies)
from mnv1.hydra_app.callbacks import STATE
from mnv1.hydra_app.grid import (
    CONFIG_MODULE,
    CONFIG_NAME,
    Expansion,
    check_command,
    to_run_config,
)

EXIT_INVALID = 2
EXIT_FAILED = 1
EXIT_UNREACHABLE = 3


def _task(cfg: DictConfig) -> str:
    """One Hydra job: one cell, trained in a child process; returns the run's final status.

    A failure inside training is the cell's result, not the job's: the job returns normally so
    the sweeper goes on to the other cells.
    """
    from mnv1.sweep.orchestrate import SweepRef, run_cell

    interrupt.phase("cell")
    outcome = run_cell(
        to_run_config(cfg), SweepRef.from_env(), Path(HydraConfig.get().runtime.output_dir)
    )
    STATE.cells.append(outcome)
    if STATE.progress is not None:
        from mnv1.sweep.plan_record import cell_line

        line = cell_line(STATE.progress, outcome, SweepRef.from_env(), sys.stdout.isatty())
        print(line, flush=True)
    return outcome.status


_app = hydra.main(version_base="1.3", config_path=CONFIG_MODULE, config_name=CONFIG_NAME)(_task)


def _informational(args: object) -> bool:
    """Commands that only print (help, --cfg, --info, shell completion) and run nothing."""
    return any(
        getattr(args, name, None)
        for name in ("help", "hydra_help", "cfg", "info", "shell_completion", "experimental_rerun")
    )


def _exit_code() -> int:
    if STATE.outcome is not None:
        return EXIT_FAILED if STATE.outcome.failed else 0
    if any(c.status != "FINISHED" for c in STATE.cells):
        return EXIT_FAILED
    return 0


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


def _interrupted(arguments: Sequence[str], cells: Sequence[RunConfig], signum: int) -> NoReturn:
    """Ctrl-C (or SIGTERM): end the sweep KILLED, say in one short message which cells stand
    KILLED and how to resume them, and exit 128 + ``signum`` without a traceback."""
    # A second Ctrl-C while the runs are being closed would leave them RUNNING: finish first.
    interrupt.ignore()
    _end_unfinished_sweep("KILLED")
    killed = _killed_cells(STATE.grid or cells)
    what = f"marked KILLED: {', '.join(killed)}" if killed else "no cell had started"
    # The same command resumes (tracking.rerun=true would start the runs afresh instead).
    resume = shlex.join(["mnv1-train", *(a for a in arguments if "tracking.rerun=" not in a)])
    interrupt.stop("mnv1-train", what, f"Resume with: {resume}", signum)


def _killed_cells(cells: Sequence[RunConfig]) -> list[str]:
    """Names of the cells whose newest run now stands KILLED (what a relaunch resumes)."""
    if not cells:
        return []
    from mnv1.config import cell_name
    from mnv1.sweep.run_key import run_key
    from mnv1.tracking import runs
    from mnv1.tracking.store import find_experiment, resolve_uri

    if STATE.sweep is not None:
        uri, experiment_id = STATE.sweep.uri, STATE.sweep.experiment_id
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
    # First: a signal at any later moment (validation, the probe, the store, the data, a cell,
    # the report) ends the launch through the one path below (mnv1.interrupt).
    interrupt.install()
    # --verbose (TensorFlow's own log lines, see mnv1.cli) is not an override: Hydra never sees it.
    arguments = _without_credentials(without_verbose(sys.argv[1:] if argv is None else argv))
    args = get_args_parser().parse_args(arguments)
    # Quiet defaults for this process and the cell workers it starts (a user's own setting wins):
    # MLflow's per-artifact progress bars drown the cell logs (TensorFlow's C++ lines are
    # silenced by mnv1.cli on import, for every console script).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    cells: list[RunConfig] = []
    try:
        if not _informational(args):
            cells, arguments = _prepare_launch(args, arguments)
        sys.argv = [sys.argv[0], *arguments]
        _app()
        # A signal whose KeyboardInterrupt Python dropped (raised inside a GC callback) still
        # ends the launch as an interrupt, never as a success.
        interrupt.check()
    except KeyboardInterrupt as exc:
        _interrupted(arguments, cells, interrupt.signum_of(exc))
    except BaseException:
        _end_unfinished_sweep("FAILED")
        raise
    if _end_unfinished_sweep("FAILED"):
        sys.exit(EXIT_FAILED)
    if not _informational(args):
        sys.exit(_exit_code())


def _prepare_launch(
    args: argparse.Namespace, arguments: list[str]
) -> tuple[list[RunConfig], list[str]]:
    """Validate the grid, check the tracking store, print the plan; the cells and the
    arguments to hand to Hydra (plus what the study's seeds and the plan add)."""
    interrupt.phase("validation")
    expansion = check_command(
        args.overrides,
        multirun=bool(args.multirun),
        config_name=args.config_name,
        config_path=args.config_path,
        config_dir=args.config_dir,
    )
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
    cells = [cell.config for cell in expansion.cells]
    kind = "grid" if expansion.multirun else "run"
    print(f"mnv1-train: {len(expansion.cells)} cell(s) validated; starting the {kind}", flush=True)
    if expansion.added:
        # The study's `seeds: N`: Hydra's sweeper must run the grid validated above.
        print(f"mnv1-train: the study's seeds add {' '.join(expansion.added)}", flush=True)
        arguments = arguments + expansion.added
    interrupt.phase("probe")
    arguments = arguments + _plan(args, expansion)
    return cells, arguments


def _plan(args: argparse.Namespace, expansion: Expansion) -> list[str]:
    """Print the plan of a sweep (or of a run whose budget is chosen by a wall-time target)
    before its first cell; return the overrides it adds (the chosen budget)."""
    cells = [c.config for c in expansion.cells]
    budget = any(
        c.train.target_minutes is not None and c.train.steps_per_epoch is None for c in cells
    )
    if not (expansion.multirun or budget):
        return []
    from mnv1.sweep.plan import SweepProgress, format_plan

    def check(items: list[str]) -> Expansion:
        return check_command(
            items,
            multirun=bool(args.multirun),
            config_name=args.config_name,
            config_path=args.config_path,
            config_dir=args.config_dir,
        )

    try:
        result = planned(args.overrides, expansion, check=check)
    except PlanError as exc:
        print(f"mnv1-train: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    print(format_plan(result.plan), end="", flush=True)
    if result.probe_error:
        print(f"mnv1-train: no estimate, the probe failed: {result.probe_error}", file=sys.stderr)
    STATE.plan, STATE.plan_seconds = result.plan, result.seconds
    STATE.progress = SweepProgress(result.plan.estimates(), total=len(result.plan.cells))
    return result.overrides


def _end_unfinished_sweep(status: str) -> bool:
    """End the parent of a sweep that stopped before its end; True if there was one."""
    if STATE.sweep is None or STATE.outcome is not None:
        return False
    from mnv1.sweep.lifecycle import abort_sweep

    abort_sweep(STATE.sweep, status)
    return True


if __name__ == "__main__":
    main()
