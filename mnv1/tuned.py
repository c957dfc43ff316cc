"""Reading ``tuned/<study>.yaml``: each cell's best overrides, as ``mnv1-tune`` found them.

A tuned file is an input of every sweep (``mnv1-train tuned=tuned/<study>.yaml``), so reading it
sits beside the config it modifies, below the sweep and the tuner alike: the sweep tags the cells
whose recipe came from a search, the grid applies a cell's overrides before validation
(``mnv1.tune.tuned_file.apply_tuned``), and ``mnv1-tune`` merges its results into the file
(``mnv1.tune.tuned_file.write_tuned``). Pure Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mnv1.config import RunConfig, run_name


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
