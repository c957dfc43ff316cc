"""Shared fixtures: each test gets its own launch directory, tracking store and data directory.

Tiers: ``pytest`` runs the fast tests; ``pytest -m "slow or not slow"`` (``make test``) adds the
slow end-to-end ones. Every test has a time limit (``timeout`` in pyproject.toml; longer ones
carry ``@pytest.mark.timeout``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sweep_support import Workspace

# Tests never look for a GPU and keep TensorFlow's C++ logging quiet; set before any import of TF.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session", autouse=True)
def probe_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One probe cache for the whole session (``mnv1.sweep.probe``): the sweeps of the tests
    share their grids, so only the first pays the probe, and ~/.cache is never touched."""
    from mnv1.sweep.probe import ENV_PROBE_DIR

    folder = tmp_path_factory.mktemp("probe")
    previous = os.environ.get(ENV_PROBE_DIR)
    os.environ[ENV_PROBE_DIR] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(ENV_PROBE_DIR, None)
        else:
            os.environ[ENV_PROBE_DIR] = previous


@pytest.fixture(scope="session", autouse=True)
def store_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One folder of SQLite store templates for the whole session
    (``mnv1.tracking.sqlite_store``): the first store a test creates runs MLflow's migrations,
    later ones are copies, and ~/.cache is never touched."""
    from mnv1.tracking.sqlite_store import ENV_TEMPLATE_DIR

    folder = tmp_path_factory.mktemp("store_templates")
    previous = os.environ.get(ENV_TEMPLATE_DIR)
    os.environ[ENV_TEMPLATE_DIR] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(ENV_TEMPLATE_DIR, None)
        else:
            os.environ[ENV_TEMPLATE_DIR] = previous


@pytest.fixture(scope="session", autouse=True)
def no_default_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A tracking store of the session's own (never created unless a test writes to it) where
    ``MLFLOW_TRACKING_URI`` is unset: a plan reads this host's finished cells from the default
    store (``mnv1.sweep.learned``), and a developer's ``./mlflow.db`` must not change a
    test's numbers."""
    name = "MLFLOW_TRACKING_URI"
    if os.environ.get(name):
        yield
        return
    os.environ[name] = f"sqlite:///{tmp_path_factory.mktemp('default-store') / 'mlflow.db'}"
    try:
        yield
    finally:
        os.environ.pop(name, None)


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A launch directory with its own SQLite store and TFDS data directory, for running the
    real ``mnv1-train``."""
    from sweep_support import Workspace  # imports MLflow: only for the tests that use it

    return Workspace(tmp_path)


@pytest.fixture
def sqlite_uri(tmp_path: Path) -> str:
    """A fresh, empty SQLite tracking store."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty TFDS data directory (``data.data_dir``)."""
    return tmp_path / "tfds"
