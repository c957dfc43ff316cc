"""A search's identity, folder and MLflow experiment, and the config each of its trials trains.

One KerasTuner project per cell: ``<tune.dir>/<study>/<cell>-<hash>``. The hash covers what
makes two searches different searches: the cell's base config (its run key's params), the search
space's content, the oracle, its seed and the held-out share. KerasTuner reloads a project by
name and silently keeps the search space saved in its ``oracle.json`` over a changed one, so a
changed space must get a new project, never an overwrite. ``tune.max_trials`` is not in the hash:
raising it continues the same search.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mnv1.config import RunConfig, TuneConfig, run_name
from mnv1.run_key import identity_params, short_key
from mnv1.tune.space import Space, apply_values

HASH_LENGTH = 12
OBJECTIVE = "val_top1"


@dataclass(frozen=True)
class Project:
    study: str
    cell: str
    key: str
    """``<cell>-<hash>``: the KerasTuner project name and the MLflow tag of the search."""
    directory: Path
    """KerasTuner's ``directory``; the project lives in ``directory / key``."""
    experiment: str

    @property
    def path(self) -> Path:
        return self.directory / self.key

    def trial_dir(self, trial_id: str) -> Path:
        return self.path / f"trial_{trial_id}"


def search_identity(cell: RunConfig, tune: TuneConfig, space: Space) -> dict[str, Any]:
    return {
        "base": identity_params(cell),
        "space": space.as_json(),
        "oracle": tune.oracle,
        "seed": tune.seed,
        "holdout_percent": tune.holdout_percent,
    }


def project_for(cell: RunConfig, tune: TuneConfig, space: Space) -> Project:
    digest = short_key(search_identity(cell, tune, space), HASH_LENGTH)
    name = run_name(cell.model.alpha, cell.model.resolution, cell.model.variant)
    return Project(
        study=cell.study,
        cell=name,
        key=f"{name}-{digest}",
        directory=Path(tune.dir).expanduser() / cell.study,
        experiment=f"{cell.tracking.experiment}_tune",
    )


def trial_config(
    cell: RunConfig, values: dict[str, Any], tune: TuneConfig, project: Project, trial_id: str
) -> RunConfig:
    """The cell's config with the trial's values, scored on the held-out tail of the training
    split, checkpointing inside the trial's folder (so a rerun of the trial resumes its own
    checkpoint), and without logging a model nobody will use."""
    cfg = apply_values(cell, values)
    return replace(
        cfg,
        data=replace(cfg.data, holdout_percent=tune.holdout_percent),
        train=replace(
            cfg.train, checkpoint_dir=str(project.trial_dir(trial_id).absolute() / "checkpoints")
        ),
        tracking=replace(cfg.tracking, log_model=False, report=False),
    )
