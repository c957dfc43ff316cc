"""``mnv1-tune``: search each cell's recipe with KerasTuner; the best go to ``tuned/<study>.yaml``.

    mnv1-tune experiment=smoke tune.max_trials=2
    mnv1-tune experiment=demo tune.cells=[mnv1_a0.25_r128] tune.oracle=bayesian tune.seed=7
    mnv1-tune experiment=demo tune.workers=2            KerasTuner's chief + 2 workers
    mnv1-train -m experiment=demo tuned=tuned/demo.yaml  train every cell with its tuned recipe

The config is composed by Hydra from the same ``conf/`` tree as ``mnv1-train``, plus the ``tune``
group (``conf/tune/default.yaml``). The tune settings are a separate dataclass
(``mnv1.config.TuneConfig``) that only this command composes: the schema registered here is
``TuneRunConfig``, the run config plus a ``tune`` section, so training runs never carry tune
settings in their params or run keys. Everything is validated before anything starts: the grid
(the same checks as ``mnv1-train``), the tune section, the cells asked for, and the search space
(its form, and its bounds and choices against the run rules in every cell to tune). Any problem:
exit 2, with every problem listed, no run, no directory, no TensorFlow.

Trials train at the budget the study's sweep trains at, so a recipe is tuned for the budget it
is used at: a study with a wall-time target (``train.target_minutes``, the demo) and no pinned
``train.steps_per_epoch`` gets the budget ``mnv1-train -m`` would choose for its whole grid on
this machine (the same cached probe, ``mnv1.cli.plan.planned``), and every trial trains that
``train.steps_per_epoch``; the command prints it before the first trial.

``--verbose`` shows TensorFlow's own start-up log lines (hidden by default) here and in the trial
processes, as it does for ``mnv1-train``.

Exit status: 0 every cell's search ended with a best trial; 1 a search stopped on consecutive
failures or found no completed trial, the budget could not be chosen, or the same search is
already running; 2 invalid configuration; 3 a trial was killed (relaunch the same command to
resume it from its checkpoint, in its own MLflow run); 130 / 143 Ctrl-C / SIGTERM (one line, no
traceback; the same command resumes).
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from hydra.core.config_store import ConfigStore

from mnv1 import interrupt
from mnv1.cli import quiet_tensorflow, wants_verbose, without_verbose
from mnv1.cli.credentials import without_credentials
from mnv1.config import RunConfig, TuneConfig, TuneRunConfig, run_name
from mnv1.hydra_app import store as hydra_store
from mnv1.hydra_app.grid import Cell, Expansion, check_command
from mnv1.sweep.validate import tune_problems
from mnv1.tune.space import Space, SpaceError, load_space, space_problems

if TYPE_CHECKING:
    from mnv1.sweep.orchestrate import Launch
    from mnv1.tune.search import SearchOutcome

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 3
ENV_TUNER_ID = "KERASTUNER_TUNER_ID"


@dataclass
class Plan:
    tune: TuneConfig
    cells: list[RunConfig]
    space: Space
    grid: list[RunConfig] = field(default_factory=list)
    """Every cell of the study: the sweep whose budget the trials train at."""
    target_minutes: float | None = None
    """The study's wall-time target, when the trials' budget was chosen for it."""


def register_schema() -> None:
    """Compose with the tune section (replacing ``run_config`` until ``plan`` puts it back)."""
    ConfigStore.instance().store(name=hydra_store.SCHEMA_NAME, node=TuneRunConfig, provider="mnv1")


def plan(overrides: Sequence[str]) -> Plan | list[str]:
    """The validated plan of ``mnv1-tune overrides...``, or every problem found."""
    register_schema()
    try:
        expansion = check_command([*overrides, "+tune=default"], multirun=True)
    finally:
        hydra_store.register()  # the plain schema again, for anything else this process composes
    if expansion.errors:
        return expansion.errors
    composed = [c.config for c in expansion.cells]
    assert all(isinstance(c, TuneRunConfig) for c in composed)
    tune = composed[0].tune  # type: ignore[attr-defined]
    errors = tune_problems(tune)
    cells = [c.run_config() for c in composed]  # type: ignore[attr-defined]
    by_name = {run_name(c.model.alpha, c.model.resolution, c.model.variant): c for c in cells}
    selected = list(by_name.values())
    if tune.cells is not None:
        unknown = [n for n in tune.cells if n not in by_name]
        for name in unknown:
            errors.append(
                f"tune.cells: {name!r} is not a cell of study {cells[0].study!r}; its cells: "
                f"{', '.join(by_name)}"
            )
        if not tune.cells:
            errors.append("tune.cells=[]: name at least one cell, or null for every cell")
        selected = [by_name[n] for n in tune.cells if n in by_name]
    if os.environ.get(ENV_TUNER_ID) and len(selected) != 1:
        errors.append(
            f"{ENV_TUNER_ID}={os.environ[ENV_TUNER_ID]}: a chief or worker process tunes one "
            f"cell; set tune.cells=[<cell>] (the study has {len(selected)})"
        )
    try:
        space = load_space(tune.space)
    except SpaceError as exc:
        return errors + exc.problems
    errors += space_problems(space, selected)
    # Trials train on this host: what it cannot offer them is refused here, not in each trial.
    from mnv1.sweep.gpu_slots import visible_gpus
    from mnv1.training.host import grid_host_problems

    errors += grid_host_problems(selected, visible_gpus())
    return errors if errors else Plan(tune, selected, space, cells)


def with_sweep_budget(
    p: Plan, overrides: Sequence[str], say: Callable[[str], None] | None = None
) -> tuple[Plan, list[str]] | str:
    """``p`` with the training budget of the study's sweep, and the override that pins it (for
    the chief and workers of a distributed search); or why it cannot be chosen.

    Only a grid whose wall-time target chooses its budget changes: the budget is what
    ``mnv1-train -m`` with the same overrides would choose for the whole grid, from the same
    probe (so a tuned recipe is tuned for the budget its sweep trains it at).
    """
    if not any(
        c.train.target_minutes is not None and c.train.steps_per_epoch is None for c in p.grid
    ):
        return p, []
    from mnv1.cli.plan import PlanError, planned

    replanned: list[Plan] = []

    def check(items: list[str]) -> Expansion:
        found = plan(items)
        if isinstance(found, list):
            return Expansion(multirun=True, errors=found)
        replanned.append(found)
        return Expansion(multirun=True, cells=[Cell([], c) for c in found.grid])

    grid = Expansion(multirun=True, cells=[Cell([], c) for c in p.grid])
    try:
        result = planned(list(overrides), grid, check=check, say=say or _progress)
    except PlanError as exc:
        return str(exc)
    return replace(replanned[-1], target_minutes=p.grid[0].train.target_minutes), result.overrides


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def trial_budget(p: Plan) -> str:
    """What each trial trains, as ``mnv1-tune`` states it before the first trial."""
    t = p.cells[0].train
    if t.steps_per_epoch is None:
        return (
            f"{t.epochs} epoch(s) of one pass over the training split less its held-out "
            f"{p.tune.holdout_percent}% (train.steps_per_epoch=null)"
        )
    images = t.epochs * t.steps_per_epoch * t.batch_size
    text = (
        f"{t.epochs}×{t.steps_per_epoch} steps of {t.batch_size} images ({images:,} images), "
        f"train.steps_per_epoch={t.steps_per_epoch}"
    )
    if p.target_minutes is not None:
        text += (
            f": the budget mnv1-train -m chooses on this machine for the study's "
            f"{p.target_minutes:g}-minute target (train.target_minutes), the budget the tuned "
            "recipes then train at"
        )
    return text


def _print_outcomes(outcomes: Sequence[SearchOutcome]) -> None:
    print("\nTuning results (val_top1 on the held-out tail of the training split):")
    for o in outcomes:
        best = o.best
        done = sum(r.completed for r in o.rows)
        text = (
            f"best {best.val_top1:.4f} (trial {best.trial_id}, run {best.run_id})"
            if best is not None
            else "no completed trial"
        )
        stop = "; stopped after consecutive failures" if o.stopped_by_failures else ""
        print(f"  {o.cell}: {done}/{len(o.rows)} trials completed, {text}{stop}")


def main(argv: Sequence[str] | None = None) -> None:
    quiet_tensorflow(argv)  # first: before anything below imports TensorFlow
    # First: a signal at any later moment (validation, the store, the data, a trial) ends the
    # command through the one path below (mnv1.interrupt).
    interrupt.install()
    given = without_credentials(sys.argv[1:] if argv is None else argv)
    # --verbose means what it means for mnv1-train: TensorFlow's own log lines are shown (here and
    # in the trial processes); it is not an override, so Hydra never sees it.
    verbose, arguments = wants_verbose(given), without_verbose(given)
    if any(a in ("-h", "--help") for a in arguments):
        print(__doc__)
        return
    try:
        interrupt.phase("validation")
        found = plan(arguments)
        if isinstance(found, list):
            print(
                f"mnv1-tune: the configuration has {len(found)} problem(s); nothing was started:",
                file=sys.stderr,
            )
            for line in found:
                print(f"  - {line}", file=sys.stderr)
            sys.exit(EXIT_INVALID)
        budgeted = with_sweep_budget(found, arguments)
        if isinstance(budgeted, str):
            print(f"mnv1-tune: {budgeted}", file=sys.stderr)
            sys.exit(EXIT_FAILED)
        found, pinned = budgeted
        arguments += pinned
        if not verbose:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        code = run(found, arguments)
        interrupt.check()  # a signal whose exception Python dropped still stops here
    except KeyboardInterrupt as exc:
        # A scheduler's SIGTERM as Ctrl-C: the running trial's process was stopped and its run
        # and the search's parent end KILLED (mnv1.tune.search.run_local); a relaunch resumes.
        interrupt.ignore()
        resume = shlex.join(["mnv1-tune", *arguments])
        interrupt.stop(
            "mnv1-tune",
            "nothing is left RUNNING (a search or trial that had started stands KILLED)",
            f"Resume with: {resume}",
            interrupt.signum_of(exc),
        )
    if os.environ.get(ENV_TUNER_ID):
        # A chief or worker has written everything (oracle.json, its runs); the interpreter's
        # teardown after TensorFlow took seconds more, which the launcher and the other
        # processes of the search would wait for (see mnv1.training.worker.exit_now).
        from mnv1.training.worker import exit_now

        exit_now(code)
    sys.exit(code)


def run(p: Plan, arguments: Sequence[str], launch: Launch | None = None) -> int:
    """Search every planned cell, write the tuned file; the exit status. ``launch`` replaces
    the trial process (tests train a stand-in in this process; see
    ``mnv1.sweep.orchestrate.Launch``)."""
    from mnv1.tune import distributed
    from mnv1.tune.search import SearchBusyError, SearchInterrupted, run_local
    from mnv1.tune.tuned_file import default_path, write_tuned

    outcomes: list[SearchOutcome] = []
    role = os.environ.get(ENV_TUNER_ID)
    if role:
        code, owned = distributed.run_role(p.cells[0], p.tune, p.space, role)
        if owned is None:
            return code
        outcomes.append(owned)  # a chief without a launcher: it writes the tuned file
    else:
        from mnv1.sweep.lifecycle import prepare_data

        interrupt.phase("data")
        prepare_data(p.cells)  # once, before any trial process reads it
    print(
        f"mnv1-tune: {len(p.cells)} cell(s), {p.tune.max_trials} trial(s) each, space "
        f"{p.space.source}, oracle {p.tune.oracle} (seed {p.tune.seed})",
        flush=True,
    )
    print(f"mnv1-tune: each trial trains {trial_budget(p)}", flush=True)
    code = 0
    try:
        for cell in p.cells if not role else []:
            if p.tune.workers:
                outcome = distributed.launch(cell, p.tune, p.space, arguments)
            else:
                outcome = run_local(cell, p.tune, p.space, launch)
            outcomes.append(outcome)
    except SearchInterrupted as exc:
        print(f"mnv1-tune: {exc}", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except (distributed.LaunchError, SearchBusyError) as exc:
        print(f"mnv1-tune: {exc}", file=sys.stderr)
        code = EXIT_FAILED
    best = {o.cell: o.best for o in outcomes if o.best is not None}
    if best:
        study = p.cells[0].study
        path = write_tuned(
            p.tune.tuned_file or default_path(study), study, p.tune.holdout_percent, best
        )
        print(f"Tuned recipes: {path} ({len(best)} cell(s) written)")
    _print_outcomes(outcomes)
    if code:
        return code
    return 0 if all(o.ok for o in outcomes) else EXIT_FAILED


if __name__ == "__main__":
    main()
