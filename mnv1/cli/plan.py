"""``mnv1-plan``: what ``mnv1-train -m`` would run and what it would cost, without running it.

    mnv1-plan experiment=demo
    mnv1-plan experiment=tradeoff16 train.epochs=5 --refresh-probe

Takes the same overrides as ``mnv1-train -m``, validates the whole grid the same way (a bad
override exits 2 with the same messages), then prints the plan: every cell with its steps, images
and estimated wall time, and the total, from the probe (``mnv1.sweep.probe``: measured once per
machine and grid, then cached outside the project). A study with ``train.target_minutes`` shows
the budget it would choose. Where a probe here could not give an estimate (a split of unknown
size, a GPU study on a machine without one: ``mnv1.sweep.estimable``) none is run, and the plan
says what an estimate would need. Nothing else is created: no run, no directory, no dataset.

``mnv1-train -m`` prints the same plan (``planned``) after validating and before its first cell.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mnv1 import interrupt
from mnv1.cli import VERBOSE_FLAG, VERBOSE_HELP, quiet_tensorflow
from mnv1.hydra_app.grid import Expansion, check_command

if TYPE_CHECKING:
    from mnv1.config import RunConfig
    from mnv1.sweep.learned import HostHistory
    from mnv1.sweep.plan import Plan

EXIT_INVALID = 2
EXIT_NO_PROBE = 1


def print_problems(prog: str, errors: Sequence[str]) -> None:
    """The refusal both ``mnv1-train`` and ``mnv1-plan`` print before exiting 2."""
    print(
        f"{prog}: the configuration has {len(errors)} problem(s); nothing was started:",
        file=sys.stderr,
    )
    for line in errors:
        print(f"  - {line}", file=sys.stderr)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class Planned:
    """A plan, the overrides it adds to the command (a chosen budget) and the final grid."""

    plan: Plan
    expansion: Expansion
    overrides: list[str] = field(default_factory=list)
    probe_error: str | None = None
    seconds: float = 0.0
    """How long planning took (a probe, when it was not cached)."""


class PlanError(RuntimeError):
    """A plan that cannot be made (a budget to choose without a probe)."""


def planned(
    overrides: Sequence[str],
    expansion: Expansion,
    *,
    check: Callable[[list[str]], Expansion],
    refresh: bool = False,
    say: Callable[[str], None] = _err,
) -> Planned:
    """Probe (or recall the probe), choose the budget where the grid asks for one, and plan.

    ``check`` re-validates the command with the chosen budget appended, so what runs is
    validated exactly as what was typed.
    """
    started = time.perf_counter()
    result = _planned(overrides, expansion, check=check, refresh=refresh, say=say)
    result.seconds = time.perf_counter() - started
    return result


def _planned(
    overrides: Sequence[str],
    expansion: Expansion,
    *,
    check: Callable[[list[str]], Expansion],
    refresh: bool,
    say: Callable[[str], None],
) -> Planned:
    from mnv1.sweep import plan as planning
    from mnv1.sweep.estimable import no_estimate_here
    from mnv1.sweep.probe import ProbeError, get_probe

    cells = [c.config for c in expansion.cells]
    needs_budget = any(
        c.train.target_minutes is not None and c.train.steps_per_epoch is None for c in cells
    )
    # No probe where its figures could not become an estimate: the plan says what it would need.
    why_not = no_estimate_here(cells)
    if why_not is not None:
        if needs_budget:
            raise PlanError(
                f"train.target_minutes={cells[0].train.target_minutes}: choosing the budget "
                f"needs a probe, but {why_not}; or pin it with train.steps_per_epoch=N"
            )
        return Planned(planning.make_plan(cells, None, why_not), expansion)
    try:
        probe = get_probe(cells, refresh=refresh, say=say)
    except (ProbeError, OSError) as exc:
        if needs_budget:
            raise PlanError(
                f"train.target_minutes={cells[0].train.target_minutes}: choosing the budget "
                f"needs the probe, which failed ({exc}); pin it with train.steps_per_epoch=N"
            ) from exc
        return Planned(planning.make_plan(cells, None), expansion, probe_error=str(exc))
    seen = _host_history(cells, say)
    launch = planning.launch_seconds(cells, probe, _zygote_up())
    plan = planning.make_plan(cells, probe, seen=seen, launch_s=launch)
    if not needs_budget:
        return Planned(plan, expansion)
    target = cells[0].train.target_minutes
    assert target is not None
    # The budget from the probe alone: a relaunch (after cells finished) chooses the same one,
    # so it finds its runs again; the estimate printed uses the best figures. So the budget
    # always counts the zygote's start, whether or not this launch's probe started it already.
    always = planning.launch_seconds(cells, probe, zygote_up=False)
    budget = planning.choose_steps(planning.make_plan(cells, probe, launch_s=always), 60.0 * target)
    extra = [f"train.steps_per_epoch={budget.steps_per_epoch}"]
    final = check([*overrides, *extra])
    if final.errors:
        raise PlanError("with the chosen budget: " + "; ".join(final.errors))
    final_cells = [c.config for c in final.cells]
    plan = planning.with_steps(
        planning.make_plan(final_cells, probe, seen=seen, launch_s=launch), budget
    )
    return Planned(plan, final, extra)


def _zygote_up() -> bool:
    """Whether this process's warm-worker zygote is up for the cells (the probe just measured
    here started it), so the launch's first cell pays no zygote start."""
    from mnv1.sweep.warm import serving
    from mnv1.worker_contract import spawn_env

    return serving(spawn_env(os.environ))


def _host_history(cells: Sequence[RunConfig], say: Callable[[str], None]) -> HostHistory | None:
    """This host's finished cells in the grid's store (``mnv1.sweep.learned``); None, said,
    when the store cannot be read (the plan then stands on the probe)."""
    from mnv1.sweep.learned import host_history

    try:
        return host_history(cells[0].tracking.uri)
    except Exception as exc:  # a store that cannot be read only costs the learned figures
        say(f"plan: this host's finished cells could not be read ({type(exc).__name__}: {exc})")
        return None


@interrupt.guarded("mnv1-plan", "nothing was written", "Run the same command again")
def main(argv: Sequence[str] | None = None) -> None:
    quiet_tensorflow(argv)  # first: before anything below imports TensorFlow
    parser = argparse.ArgumentParser(
        prog="mnv1-plan",
        description="Print the plan of `mnv1-train -m OVERRIDES...` (cells, steps, images, "
        "estimated wall time) without running anything.",
    )
    parser.add_argument("overrides", nargs="*", help="the same overrides as mnv1-train -m")
    parser.add_argument(
        "--refresh-probe", action="store_true", help="measure the probe again, ignoring the cache"
    )
    parser.add_argument("--config-name", default=None)
    parser.add_argument("--config-path", default=None)
    parser.add_argument("--config-dir", default=None)
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    # `mnv1-plan -m ...` reads as the command it plans; a sweep is what it always plans.
    given = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args([a for a in given if a not in ("-m", "--multirun")])
    overrides = list(args.overrides)

    def check(items: list[str]) -> Expansion:
        return check_command(
            items,
            multirun=True,
            config_name=args.config_name,
            config_path=args.config_path,
            config_dir=args.config_dir,
        )

    expansion = check(overrides)
    if expansion.errors:
        print_problems("mnv1-plan", expansion.errors)
        sys.exit(EXIT_INVALID)
    from mnv1.sweep.plan import format_plan

    try:
        result = planned(overrides, expansion, check=check, refresh=args.refresh_probe)
    except PlanError as exc:
        _err(f"mnv1-plan: {exc}")
        sys.exit(EXIT_NO_PROBE)
    print(format_plan(result.plan), end="", flush=True)
    if result.probe_error:
        _err(f"mnv1-plan: no estimate, the probe failed: {result.probe_error}")
        sys.exit(EXIT_NO_PROBE)
    sys.exit(0)


if __name__ == "__main__":
    main()
