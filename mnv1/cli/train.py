"""``mnv1-train``: one run, or with ``-m`` a sweep, as a Hydra application.

    mnv1-train                                   one run of the default config
    mnv1-train model.alpha=0.5 model.resolution=160
    mnv1-train -m experiment=demo                a study's grid (experiments/demo.yaml)
    mnv1-train -m experiment=smoke hydra/launcher=joblib hydra.launcher.n_jobs=2

Before Hydra runs anything, ``main`` composes the config and expands the whole grid exactly as
the sweeper will, converts every cell to a RunConfig and validates it; if anything is wrong it
lists every problem (key, value, what is allowed) and exits with code 2, having created no run,
no output directory and no TensorFlow context. Then Hydra runs: each job orchestrates one cell
(``mnv1.sweep.orchestrate.run_cell``), which trains in a child process. Hydra returns normally
from a
multirun whatever its jobs did, so ``main`` exits 1 afterwards if any cell did not finish.

Ctrl-C (SIGINT) or SIGTERM stops the running cell's worker; its run and the sweep's parent end
KILLED, one line names the cells marked KILLED and the command that resumes them, and ``main``
exits 130 (SIGTERM: 143) without a traceback.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import hydra
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from mnv1.cli import hydra_store  # noqa: F401  (registers the schema and the studies)
from mnv1.cli.hydra_callbacks import STATE
from mnv1.cli.hydra_grid import CONFIG_MODULE, CONFIG_NAME, check_command, to_run_config
from mnv1.config import RunConfig

EXIT_INVALID = 2
EXIT_FAILED = 1


def _task(cfg: DictConfig) -> str:
    """One Hydra job: one cell, trained in a child process; returns the run's final status.

    A failure inside training is the cell's result, not the job's: the job returns normally so
    the sweeper goes on to the other cells.
    """
    from mnv1.sweep.orchestrate import SweepRef, run_cell

    outcome = run_cell(
        to_run_config(cfg), SweepRef.from_env(), Path(HydraConfig.get().runtime.output_dir)
    )
    STATE.cells.append(outcome)
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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _interrupted(arguments: Sequence[str], cells: Sequence[RunConfig], code: int) -> NoReturn:
    """Ctrl-C (or SIGTERM): end the sweep KILLED, say in one short message which cells stand
    KILLED and how to resume them, and exit ``code`` without a traceback."""
    # A second Ctrl-C while the runs are being closed would leave them RUNNING: finish first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _end_unfinished_sweep("KILLED")
    killed = _killed_cells(STATE.grid or cells)
    what = f"marked KILLED: {', '.join(killed)}" if killed else "no cell had started"
    # The same command resumes (tracking.rerun=true would start the runs afresh instead).
    resume = shlex.join(["mnv1-train", *(a for a in arguments if "tracking.rerun=" not in a)])
    print(f"\nmnv1-train: interrupted; {what}. Resume with: {resume}", file=sys.stderr, flush=True)
    sys.exit(code)


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
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = get_args_parser().parse_args(arguments)
    # Quiet defaults for this process and the cell workers it starts (a user's own setting wins):
    # MLflow's per-artifact progress bars drown the cell logs (TensorFlow's C++ lines are
    # silenced by mnv1.cli on import, for every console script).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    cells: list[RunConfig] = []
    if not _informational(args):
        try:
            expansion = check_command(
                args.overrides,
                multirun=bool(args.multirun),
                config_name=args.config_name,
                config_path=args.config_path,
                config_dir=args.config_dir,
            )
        except KeyboardInterrupt:
            _interrupted(arguments, [], 128 + signal.SIGINT)
        if expansion.errors:
            count = len(expansion.errors)
            print(
                f"mnv1-train: the configuration has {count} problem(s); nothing was started:",
                file=sys.stderr,
            )
            for line in expansion.errors:
                print(f"  - {line}", file=sys.stderr)
            sys.exit(EXIT_INVALID)
        cells = [cell.config for cell in expansion.cells]
        kind = "grid" if expansion.multirun else "run"
        print(
            f"mnv1-train: {len(expansion.cells)} cell(s) validated; starting the {kind}", flush=True
        )

    sys.argv = [sys.argv[0], *arguments]
    # A scheduler stops a job with SIGTERM (SLURM preemption, `kill`): treat it like Ctrl-C, so
    # the running cell's worker is stopped and its run and the sweep's parent end KILLED rather
    # than being left RUNNING until the next launch reconciles them.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        _app()
    except KeyboardInterrupt as exc:
        # 128 + the signal, as a shell reports a command stopped by it (130 for Ctrl-C).
        signum = signal.SIGTERM if str(exc) == f"signal {signal.SIGTERM}" else signal.SIGINT
        _interrupted(arguments, cells, 128 + signum)
    except BaseException:
        _end_unfinished_sweep("FAILED")
        raise
    if _end_unfinished_sweep("FAILED"):
        sys.exit(EXIT_FAILED)
    if not _informational(args):
        sys.exit(_exit_code())


def _end_unfinished_sweep(status: str) -> bool:
    """End the parent of a sweep that stopped before its end; True if there was one."""
    if STATE.sweep is None or STATE.outcome is not None:
        return False
    from mnv1.sweep.lifecycle import abort_sweep

    abort_sweep(STATE.sweep, status)
    return True


if __name__ == "__main__":
    main()
