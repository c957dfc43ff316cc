"""Compose the config and expand a sweep's whole grid exactly as Hydra's BasicSweeper would.

``mnv1-plan`` and ``mnv1-tune`` call ``check_command``: every cell of the grid is composed,
converted to a RunConfig and validated, and nothing runs. ``mnv1-train`` composes the master
config with ``compose_master`` and hands it to its sweeper (``mnv1.hydra_app.sweeper``), which
calls ``expand`` once and launches the cells it composed, so a launch composes each cell once.

The expansion follows BasicSweeper step by step: the study's ``hydra.sweeper.params`` followed by
the command-line overrides, parsed by Hydra's own parser, crossed by ``split_arguments``, and
each cell composed by the config loader's ``load_sweep_config`` as a launcher would.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.hydra import Hydra
from hydra._internal.utils import create_automatic_config_search_path
from hydra.core.config_loader import ConfigLoader
from hydra.core.config_search_path import SearchPathQuery
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from mnv1.config import RunConfig
from mnv1.hydra_app.store import STUDY_GROUP
from mnv1.sweep.validate import grid_problems
from mnv1.tune.tuned_file import apply_tuned

CONFIG_MODULE = "pkg://mnv1.conf"
CONFIG_NAME = "config"
TASK_NAME = "mnv1"

# Launcher presets that need an optional extra (pyproject.toml) and the plugin config they wrap.
LAUNCHER_EXTRAS = {
    "submitit_slurm": "slurm",
    "submitit_local": "slurm",
    "ray": "ray",
    "ray_aws": "ray",
}


@dataclass
class Cell:
    overrides: list[str]
    config: RunConfig
    composed: DictConfig | None = None
    """The cell's config as Hydra composed it, ``hydra`` node included (what a launcher runs)."""


@dataclass
class Expansion:
    multirun: bool
    cells: list[Cell] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # The launcher's class path and, for Ray, the cluster address it joins (for
    # ``mnv1.launchers.cluster_check``).
    launcher: str | None = None
    ray_address: str | None = None
    added: list[str] = field(default_factory=list)
    """Overrides the expansion added to the command line (the study's ``seeds`` axis), already
    part of ``cells``; the command that resumes an interrupted launch names them."""


SEED_KEY = "train.seed"


def seed_overrides(master: DictConfig, arguments: Sequence[str]) -> list[str]:
    """``train.seed=range(N)`` for a study's ``seeds: N`` (N > 1), unless ``train.seed`` is
    already swept or set by the study's grid or the command line (those win)."""
    seeds = OmegaConf.select(master, "seeds", default=1)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds <= 1:
        return []  # 1 is the default; a bad value is reported by the validation of every cell
    for item in arguments:
        if item.lstrip("+~").partition("=")[0] == SEED_KEY:
            return []
    return [f"{SEED_KEY}=range({seeds})"]


def make_hydra(
    config_path: str | None = None, config_dir: str | None = None, task_name: str = TASK_NAME
) -> Hydra:
    """A Hydra instance over ``conf/`` (or ``--config-path``, plus ``--config-dir``), built as
    ``hydra.main`` builds it for ``mnv1.cli.train`` (whose jobs ``hydra.main`` names ``train``)."""
    # hydra.main resolves a relative --config-path against the application's file.
    app_file = str(Path(__file__).parents[1] / "cli" / "train.py")
    search_path = create_automatic_config_search_path(app_file, None, config_path or CONFIG_MODULE)
    if config_dir is not None:
        search_path.prepend(
            provider="command-line",
            path=f"file://{Path(config_dir).absolute()}",
            anchor=SearchPathQuery(provider="schema"),
        )
    GlobalHydra.instance().clear()
    return Hydra.create_main_hydra2(task_name=task_name, config_search_path=search_path)


def to_run_config(cfg: DictConfig) -> RunConfig:
    """The one conversion from Hydra's config to the typed dataclasses used below the CLI."""
    task = copy.deepcopy(cfg)
    if "hydra" in task:
        with open_dict(task):
            del task["hydra"]
    obj = OmegaConf.to_object(task)
    if not isinstance(obj, RunConfig):
        raise TypeError(f"the composed config is a {type(obj).__name__}, expected RunConfig")
    # A tuned file (``tuned=tuned/<study>.yaml``) sets this cell's recipe here, before the grid is
    # validated: its values pass the same rules and enter the run key like any other value.
    return apply_tuned(obj)


def _first_lines(text: str, n: int = 4) -> str:
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return " / ".join(ln.strip() for ln in lines[:n])


def explain(exc: BaseException, loader: ConfigLoader | None = None) -> str:
    """A composition error as one readable line: what was asked, and what is available."""
    text = str(exc)
    missing = re.search(r"Could not (?:find|load) '([\w/]+)/([\w.-]+)'", text)
    if missing:
        group, option = missing.groups()
        if group == "hydra/launcher" and option in LAUNCHER_EXTRAS:
            extra = LAUNCHER_EXTRAS[option]
            return (
                f"this launcher needs the Hydra plugin behind hydra/launcher/{option}, which is "
                f"not installed: pip install 'mnv1[{extra}]'"
            )
        options = loader.get_group_options(group) if loader is not None else []
        known = f"; known: {', '.join(options)}" if options else ""
        return f"{group}={option}: no such option{known}"
    merging = re.match(r"Error merging override (\S+)", text)
    cause = exc.__cause__ or exc.__context__
    if merging and cause is not None:
        # "Error merging override model.resolution=abc" says which; the cause says why.
        return f"{merging.group(1)}: {_first_lines(str(cause), 1)}"
    return _first_lines(text)


def _studies_asked(overrides: Sequence[str]) -> list[str]:
    asked = []
    for item in overrides:
        m = re.match(r"^[+~]{0,2}experiment=(.*)$", item)
        if m and m.group(1) not in ("", "null"):
            asked += [s.strip() for s in m.group(1).split(",") if s.strip()]
    return asked


def expand(loader: ConfigLoader, master: DictConfig, multirun: bool) -> Expansion:
    """Every cell of the grid that ``master`` (a composed config) would launch, converted and
    validated. In run mode the grid is the single config itself."""
    result = Expansion(multirun=multirun)
    if not multirun:
        try:
            result.cells = [Cell([], to_run_config(master), master)]
        except (OmegaConfBaseException, HydraException, ValueError, TypeError) as exc:
            result.errors.append(explain(exc, loader))
    else:
        sweeper = OmegaConf.select(master, "hydra.sweeper._target_")
        if sweeper and not str(sweeper).endswith("BasicSweeper"):
            result.errors.append(
                f"hydra/sweeper={sweeper}: only the basic sweeper is supported (a grid known in "
                "advance is what lets every cell be validated before the sweep starts)"
            )
            return result
        params = OmegaConf.select(master, "hydra.sweeper.params") or {}
        arguments = [f"{k}={v}" for k, v in params.items()]
        arguments += list(OmegaConf.to_container(master.hydra.overrides.task, resolve=False))  # type: ignore[arg-type]
        result.added = seed_overrides(master, arguments)
        arguments += result.added
        parser = OverridesParser.create(config_loader=loader)
        try:
            batches = BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)
        except (HydraException, OmegaConfBaseException, ValueError) as exc:
            result.errors.append(explain(exc, loader))
            return result
        failed: dict[str, list[str]] = {}
        for overrides in batches[0]:
            try:
                job = loader.load_sweep_config(master, list(overrides))
                result.cells.append(Cell(list(overrides), to_run_config(job), job))
            except (OmegaConfBaseException, HydraException, ValueError, TypeError) as exc:
                failed.setdefault(explain(exc, loader), []).append(" ".join(overrides))
        total = len(batches[0])
        for message, where in failed.items():
            if len(where) == total:
                result.errors.append(f"{message} (all {total} cells)" if total > 1 else message)
            else:
                shown = "; ".join(where[:3]) + ("; ..." if len(where) > 3 else "")
                result.errors.append(f"{message} (in {len(where)} of {total} cells: {shown})")
    configs = [c.config for c in result.cells]
    result.errors += grid_problems(configs)
    result.errors += _sweep_problems(configs)
    return result


def _sweep_problems(cells: Sequence[RunConfig]) -> list[str]:
    """Rules over the whole grid: one sweep records into one store and one experiment."""
    out = []
    for key, values in (
        ("tracking.uri", {c.tracking.uri for c in cells}),
        ("tracking.experiment", {c.tracking.experiment for c in cells}),
        ("study", {c.study for c in cells}),
        # One wall-time target chooses one budget for the whole sweep.
        ("train.target_minutes", {c.train.target_minutes for c in cells}),
    ):
        if len(values) > 1:
            shown = ", ".join(sorted(repr(v) for v in values))
            out.append(f"{key} takes the values {shown} across the grid: a sweep has one")
    return out


@dataclass
class Master:
    """The master config of a command line and the overrides it could not apply (then the config
    is composed without them, so that the grid's own problems are found too; None when even
    that failed)."""

    config: DictConfig | None
    multirun: bool
    errors: list[str] = field(default_factory=list)


def compose_master(
    hydra: Hydra,
    overrides: Sequence[str],
    *,
    multirun: bool,
    config_name: str | None = None,
    with_log_configuration: bool = False,
) -> Master:
    """Compose the master config of ``mnv1-train [-m] overrides...`` once, listing every
    override it cannot apply (Hydra stops at the first)."""
    name = config_name or CONFIG_NAME
    # The studies: experiments/ (registered in the ConfigStore) and any --config-dir ones.
    studies = sorted(hydra.config_loader.get_group_options(STUDY_GROUP))
    unknown = [s for s in _studies_asked(overrides) if s not in studies]
    if unknown:
        return Master(
            None,
            multirun,
            [
                f"experiment={s!r}: no such study; known studies: {', '.join(studies)}"
                for s in unknown
            ],
        )
    # The mode as hydra.main decides it: -m, else hydra.mode from the config, else a run.
    # (Asking the config for its mode composes it; with -m there is nothing to ask.)
    mode = RunMode.MULTIRUN if multirun else hydra.get_mode(name, list(overrides))
    if mode is None:
        mode = RunMode.RUN
    is_multirun = mode == RunMode.MULTIRUN
    # Hydra stops at the first override it cannot apply; set that one aside and compose
    # again, so a typo does not hide the other problems of the same command line.
    remaining = list(overrides)
    errors: list[str] = []
    while True:
        try:
            master = hydra.compose_config(
                config_name=name,
                overrides=[*remaining, f"hydra.mode={mode.name}"],
                run_mode=mode,
                with_log_configuration=with_log_configuration and not errors,
            )
            break
        except (HydraException, OmegaConfBaseException, ValueError) as exc:
            errors.append(explain(exc, hydra.config_loader))
            culprit = _culprit(exc, remaining)
            if culprit is None:
                return Master(None, is_multirun, errors)
            remaining.remove(culprit)
    return Master(master, is_multirun, errors)


def expand_master(loader: ConfigLoader, master: DictConfig, multirun: bool) -> Expansion:
    """``expand``, plus the launcher and the Ray address the cluster check needs."""
    found = expand(loader, master, multirun)
    found.launcher = OmegaConf.select(master, "hydra.launcher._target_", default=None)
    try:
        found.ray_address = OmegaConf.select(
            master, "hydra.launcher.ray.init.address", default=None
        )
    except OmegaConfBaseException as exc:
        found.errors.append(f"hydra.launcher.ray.init.address: {_first_lines(str(exc), 1)}")
    return found


def check_command(
    overrides: Sequence[str],
    *,
    multirun: bool,
    config_name: str | None = None,
    config_path: str | None = None,
    config_dir: str | None = None,
) -> Expansion:
    """Compose and expand what ``mnv1-train [-m] overrides...`` would run, without running it:
    no job, no output directory, no tracking, no TensorFlow."""
    hydra = make_hydra(config_path, config_dir)
    try:
        master = compose_master(hydra, overrides, multirun=multirun, config_name=config_name)
        if master.config is None:
            return Expansion(multirun=master.multirun, errors=master.errors)
        found = expand_master(hydra.config_loader, master.config, master.multirun)
        found.errors = master.errors + found.errors
        return found
    finally:
        GlobalHydra.instance().clear()


def with_overrides(expansion: Expansion, extra: Sequence[str]) -> Expansion:
    """The same grid with ``extra`` overrides (``key=value``, e.g. the budget a plan chose)
    applied to every cell's composed config, converted and validated again: no composition.

    Each value goes through the schema's type check as a command-line override would, and is
    recorded in the cell's overrides (the job's ``.hydra/overrides.yaml``, its log line).
    """
    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(list(extra))
    except (HydraException, OmegaConfBaseException) as exc:
        return Expansion(multirun=expansion.multirun, errors=[explain(exc)])
    result = Expansion(
        multirun=expansion.multirun,
        launcher=expansion.launcher,
        ray_address=expansion.ray_address,
        added=list(expansion.added),
    )
    for cell in expansion.cells:
        assert cell.composed is not None, "with_overrides needs the composed cells"
        job = copy.deepcopy(cell.composed)
        try:
            for item, override in zip(extra, parsed, strict=True):
                OmegaConf.update(job, override.key_or_group, override.value(), merge=False)
                with read_write(job.hydra), open_dict(job.hydra):
                    job.hydra.overrides.task.append(item)
            result.cells.append(Cell([*cell.overrides, *extra], to_run_config(job), job))
        except (OmegaConfBaseException, ValueError, TypeError) as exc:
            result.errors.append(f"{' '.join(extra)}: {_first_lines(str(exc), 1)}")
            return result
    configs = [c.config for c in result.cells]
    result.errors += grid_problems(configs) + _sweep_problems(configs)
    return result


def _culprit(exc: BaseException, overrides: Sequence[str]) -> str | None:
    """The command-line override a composition error is about, if it names one."""
    texts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(texts) < 5:
        texts.append(str(current))
        current = current.__cause__ or current.__context__
    text = "\n".join(texts)
    for item in overrides:
        key, _, value = item.lstrip("+~").partition("=")
        if item in text or f"'{key}'" in text or f"'{key}/{value}'" in text:
            return item
    return None
