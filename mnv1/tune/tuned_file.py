"""``tuned/<study>.yaml``: each cell's best overrides, as ``mnv1-tune`` found them.

Written by ``mnv1-tune`` (one entry per tuned cell, merged into the file so cells tuned in
separate launches share it) and read by ``mnv1-train tuned=tuned/<study>.yaml``, which applies a
cell's overrides to that cell before validation. The values then enter each run's key as any
other config value; the file's path does not. Pure Python.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import filelock
import yaml

from mnv1.config import RunConfig, run_name
from mnv1.tune.space import apply_values

HEADER = (
    "# Written by mnv1-tune: per cell, the best trial's overrides, its val_top1 on the held-out\n"
    "# tail of the training split, and its MLflow run. Use: mnv1-train -m experiment={study} "
    "tuned={path}\n"
)


@dataclass(frozen=True)
class TunedCell:
    overrides: dict[str, Any]
    val_top1: float
    trial_id: str
    run_id: str
    search_run_id: str

    def as_yaml(self) -> dict[str, Any]:
        return {
            "overrides": dict(self.overrides),
            "val_top1": float(self.val_top1),
            "trial_id": self.trial_id,
            "run_id": self.run_id,
            "search_run_id": self.search_run_id,
        }


@dataclass(frozen=True)
class TunedFile:
    study: str
    holdout_percent: int | None
    cells: dict[str, TunedCell]


def default_path(study: str) -> Path:
    return Path("tuned") / f"{study}.yaml"


def read_tuned(path: str | Path) -> TunedFile:
    """Parse a tuned file; raises ValueError naming the file and what is wrong."""
    where = f"tuned={str(path)!r}"
    p = Path(path).expanduser()
    if not p.is_file():
        raise ValueError(f"{where}: no such file (mnv1-tune writes tuned/<study>.yaml)")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: not valid YAML ({err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("cells"), dict):
        raise ValueError(f"{where}: expected a mapping with 'study' and 'cells'")
    cells = {}
    for name, entry in data["cells"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("overrides"), dict):
            raise ValueError(f"{where}: cell {name} has no 'overrides' mapping")
        try:
            cells[str(name)] = TunedCell(
                overrides=dict(entry["overrides"]),
                val_top1=float(entry["val_top1"]),
                trial_id=str(entry["trial_id"]),
                run_id=str(entry["run_id"]),
                search_run_id=str(entry.get("search_run_id", "")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{where}: cell {name} lacks or garbles {err}") from err
    return TunedFile(str(data.get("study", "")), data.get("holdout_percent"), cells)


def write_tuned(
    path: str | Path, study: str, holdout_percent: int, entries: Mapping[str, TunedCell]
) -> Path:
    """Merge ``entries`` into the tuned file at ``path`` (other cells' entries stay), atomically
    and under a lock, so two launches tuning different cells of one study both land."""
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(p) + ".lock"):
        cells: dict[str, TunedCell] = {}
        if p.is_file():
            existing = read_tuned(p)
            if existing.study == study and existing.holdout_percent == holdout_percent:
                cells.update(existing.cells)
        cells.update(entries)
        document = {
            "study": study,
            "objective": "val_top1",
            "holdout_percent": holdout_percent,
            "cells": {name: cells[name].as_yaml() for name in sorted(cells)},
        }
        text = HEADER.format(study=study, path=path) + yaml.safe_dump(
            document, sort_keys=False, default_flow_style=False
        )
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, p)
    return p


def tuned_entry(cfg: RunConfig) -> TunedCell | None:
    """The tuned file's entry for ``cfg``'s cell (None without ``tuned``); raises ValueError
    when the file cannot be used for this cell."""
    if cfg.tuned is None:
        return None
    tuned = read_tuned(cfg.tuned)
    where = f"tuned={cfg.tuned!r}"
    if tuned.study and tuned.study != cfg.study:
        raise ValueError(
            f"{where}: written for study {tuned.study!r}, this run belongs to {cfg.study!r}"
        )
    name = run_name(cfg.model.alpha, cfg.model.resolution, cfg.model.variant)
    if name not in tuned.cells:
        have = ", ".join(sorted(tuned.cells)) or "none"
        raise ValueError(
            f"{where}: cell {name} is not in the file (it has: {have}); tune it with "
            f"mnv1-tune experiment={cfg.study} tune.cells=[{name}]"
        )
    return tuned.cells[name]


def apply_tuned(cfg: RunConfig) -> RunConfig:
    """``cfg`` with its cell's tuned overrides applied (unchanged without ``tuned``)."""
    entry = tuned_entry(cfg)
    if entry is None:
        return cfg
    bad = [k for k, v in entry.overrides.items() if isinstance(v, float) and not math.isfinite(v)]
    if bad:
        raise ValueError(f"tuned={cfg.tuned!r}: {', '.join(bad)} is not a finite number")
    try:
        return replace(apply_values(cfg, entry.overrides), tuned=cfg.tuned)
    except KeyError as err:
        raise ValueError(f"tuned={cfg.tuned!r}: {err.args[0]}") from err
