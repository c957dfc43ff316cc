"""Checks a run configuration before anything is started: plain Python, no TensorFlow, no Hydra.

``mnv1-train`` runs these checks on every cell of the expanded grid before it creates an MLflow
run, an output directory or a TensorFlow context, and reports all problems at once. Each problem
names the key, the value received and what is allowed, so a typo in a 16-cell sweep costs
seconds, not the first fifteen cells.

The rules themselves are the table in ``mnv1.config`` (``RULES``), which the run-time checks
apply too; this module adds the data layer's checks (does the dataset exist, is it prepared) and
groups a grid's problems by message. What needs the devices (the exact replica count under
``auto`` on a GPU host) is checked again where those exist.
"""

from __future__ import annotations

from collections.abc import Iterable

from mnv1.config import (
    TUNE_RULES,
    ConfigError,
    RunConfig,
    TuneConfig,
    cell_name,
    known_replicas,
)
from mnv1.config import problems as rule_problems
from mnv1.data.check import source_problems

__all__ = [
    "ConfigError",
    "check",
    "grid_problems",
    "known_replicas",
    "problems",
    "tune_problems",
]


def tune_problems(tune: TuneConfig) -> list[str]:
    """Every rule of the ``tune`` section (``mnv1.config.TUNE_RULES``) that ``tune`` breaks; the
    search space and the cells are checked against the grid in ``mnv1.tune.space``."""
    found = []
    for item in TUNE_RULES:
        problem = item.check(getattr(tune, item.key.removeprefix("tune.")))
        if problem is not None:
            found.append(str(problem))
    return found


def problems(cfg: RunConfig) -> list[str]:
    """Every reason ``cfg`` must not run, as ``key=value: what is allowed`` lines; [] when fine."""
    found = rule_problems(cfg)
    # The data layer owns what the table cannot say: which datasets exist, whether one is
    # prepared or may be, what a folder holds. It reads only keys that passed their rules.
    bad = {p.key for p in found}
    return [str(p) for p in found] + source_problems(cfg.data, bad)


def check(cfg: RunConfig) -> None:
    """Raise ConfigError listing every problem of ``cfg``."""
    found = problems(cfg)
    if found:
        raise ConfigError(found)


def grid_problems(cells: Iterable[RunConfig]) -> list[str]:
    """Problems of a whole grid, each reported once with the cells it occurs in.

    One bad value inside a 16-cell grid is one line naming its cell, not sixteen lines; a problem
    shared by every cell says so.
    """
    cell_list = list(cells)
    where: dict[str, list[str]] = {}
    for cfg in cell_list:
        for message in problems(cfg):
            where.setdefault(message, []).append(cell_name(cfg))
    lines = []
    for message, names in where.items():
        if len(cell_list) <= 1:
            lines.append(message)
        elif len(names) == len(cell_list):
            lines.append(f"{message} (all {len(cell_list)} cells)")
        else:
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            lines.append(f"{message} (in {len(names)} of {len(cell_list)} cells: {shown})")
    return lines
