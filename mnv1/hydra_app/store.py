"""Registers the typed schema and the studies in Hydra's ConfigStore.

The schema (``mnv1.config.RunConfig``) is the ``run_config`` entry that ``conf/config.yaml`` lists
first, so every value is type-checked as it is composed. The studies stay a flat folder of YAML
files (``experiments/<name>.yaml``, shipped as package data) and are registered here as the group
``experiment`` in the global package: ``experiment=smoke`` merges ``experiments/smoke.yaml`` at
the root, grid (``hydra.sweeper.params``) included.

Registration runs when this module is imported, which also happens in every job process a
launcher starts (the task function's module imports it), so jobs compose the same way.
"""

from __future__ import annotations

import importlib
from importlib.resources import files

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from omegaconf import OmegaConf

from mnv1.config import RunConfig, run_name

SCHEMA_NAME = "run_config"
# mnv1's launchers (conf/hydra/launcher/slurm.yaml, ray_cluster.yaml): module, class.
LAUNCHERS = (
    ("hydra_plugins.mnv1_launchers.slurm", "SlurmLauncher"),
    ("hydra_plugins.mnv1_launchers.ray", "RayClusterLauncher"),
)
STUDY_GROUP = "experiment"
# ``${mnv1.cell_name:${model.alpha},${model.resolution},${model.variant}}`` in conf/config.yaml:
# Hydra's per-cell folders carry the same name as the cell's run (mnv1.config.run_name).
CELL_NAME_RESOLVER = "mnv1.cell_name"


def study_sources() -> dict[str, str]:
    """Each study's name and YAML text, from the installed ``experiments`` package."""
    found = {}
    for entry in files("mnv1.experiments").iterdir():
        if entry.name.endswith(".yaml"):
            found[entry.name.removesuffix(".yaml")] = entry.read_text(encoding="utf-8")
    return dict(sorted(found.items()))


def known_studies() -> list[str]:
    return list(study_sources())


def register() -> None:
    """Store the schema and every study (idempotent: a second call replaces the same entries)."""
    OmegaConf.register_new_resolver(
        CELL_NAME_RESOLVER,
        lambda alpha, resolution, variant: run_name(alpha, resolution, variant),
        replace=True,
    )
    store = ConfigStore.instance()
    store.store(name=SCHEMA_NAME, node=RunConfig, provider="mnv1")
    for name, text in study_sources().items():
        store.store(
            group=STUDY_GROUP,
            name=name,
            node=OmegaConf.create(text),
            package="_global_",
            provider="mnv1",
        )
    register_launchers()


def register_launchers() -> None:
    """Make mnv1's launchers known to Hydra, whose plugin scan misses them in an editable
    install (``pip install -e``: the package sits behind a path hook the scan does not walk).
    A launcher whose extra is not installed is not defined, and is skipped."""
    for module, name in LAUNCHERS:
        launcher = getattr(importlib.import_module(module), name, None)
        if launcher is not None:
            Plugins.instance().register(launcher)


register()
