"""Writing and applying ``tuned/<study>.yaml``: each cell's best overrides, as ``mnv1-tune``
found them.

Written by ``mnv1-tune`` (one entry per tuned cell, merged into the file so cells tuned in
separate launches share it) and read by ``mnv1-train tuned=tuned/<study>.yaml``, which applies a
cell's overrides to that cell before validation. The values then enter each run's key as any
other config value; the file's path does not. The reader, which the sweep uses too, is
``mnv1.tuned``. Pure Python.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import filelock
import yaml

from mnv1.config import RunConfig
from mnv1.tune.space import apply_values
from mnv1.tuned import TunedCell, read_tuned, tuned_entry

HEADER = (
    "# Written by mnv1-tune: per cell, the best trial's overrides, its val_top1 on the held-out\n"
    "# tail of the training split, and its MLflow run. Use: mnv1-train -m experiment={study} "
    "tuned={path}\n"
)


def default_path(study: str) -> Path:
    return Path("tuned") / f"{study}.yaml"


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
