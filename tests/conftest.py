"""Shared fixtures: each test gets its own launch directory, tracking store and data directory.

Tiers: ``pytest`` runs the fast tests; ``pytest -m "slow or not slow"`` (``make test``) adds the
slow end-to-end ones. Every test has a time limit (``timeout`` in pyproject.toml; longer ones
carry ``@pytest.mark.timeout``). ``make test`` and ``make test-fast`` run on two pytest-xdist
workers; how the tests are grouped and ordered for them is in tests/schedule_support.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from schedule_support import arrange, built_once, check_groups_kept

if TYPE_CHECKING:
    from smoke_support import SmokeSweep
    from sweep_support import Workspace

# Tests never look for a GPU and keep TensorFlow's C++ logging quiet; set before any import of TF.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# A test run started in the background (``nohup``, ``cmd &`` in a shell without job control, some
# CI runners) inherits SIGINT ignored, and so would every process a test starts: a Ctrl-C test
# would then see its command ignore the signal, as a backgrounded command rightly does
# (mnv1.interrupt.install). The tests check what a terminal's command does, so this process (each
# xdist worker imports this file) takes Python's own handler back before any test starts one.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _signals_kept() -> Iterator[None]:
    """Each test leaves the signal handlers and ``mnv1.interrupt``'s state as it found them: a
    console script's ``main`` called in-process installs its handlers (``mnv1.interrupt.install``)
    and may record a signal, and a later test in the same worker would inherit both."""
    from mnv1 import interrupt

    handlers = {s: signal.getsignal(s) for s in interrupt.SIGNALS}
    hook = sys.unraisablehook
    yield
    for s, handler in handlers.items():
        if signal.getsignal(s) is not handler:
            signal.signal(s, handler)
    sys.unraisablehook = hook
    interrupt._pending, interrupt._holding, interrupt._closing = None, 0, False


@contextlib.contextmanager
def _env_set(name: str, value: str) -> Iterator[None]:
    """``$name`` set to ``value`` for the block, then as it was (unset if it was)."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups off the tests
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    arrange(config, items)


def pytest_collection_finish(session: pytest.Session) -> None:
    check_groups_kept(session)


@pytest.fixture(scope="session", autouse=True)
def probe_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One probe cache for the whole run (``mnv1.sweep.probe``), shared by the xdist workers:
    the sweeps of the tests share their grids, so only the first pays the probe, and ~/.cache is
    never touched."""
    from mnv1.sweep.probe import ENV_PROBE_DIR

    folder = built_once(tmp_path_factory, "probe", lambda folder: None)
    with _env_set(ENV_PROBE_DIR, str(folder)):
        yield folder


@pytest.fixture(scope="session", autouse=True)
def store_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One folder of SQLite store templates for the whole session
    (``mnv1.tracking.sqlite_store``): the first store a test creates runs MLflow's migrations,
    later ones are copies, and ~/.cache is never touched."""
    from mnv1.tracking.sqlite_store import ENV_TEMPLATE_DIR

    folder = tmp_path_factory.mktemp("store_templates")
    with _env_set(ENV_TEMPLATE_DIR, str(folder)):
        yield folder


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
    with _env_set(name, f"sqlite:///{tmp_path_factory.mktemp('default-store') / 'mlflow.db'}"):
        yield


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty SQLite tracking store, created once per run: MLflow's migrations take seconds,
    a copy of their result a few milliseconds."""

    def create(folder: Path) -> None:
        from mnv1.tracking import sqlite_store

        sqlite_store.create(folder / "mlflow.db")

    return built_once(tmp_path_factory, "store-template", create) / "mlflow.db"


@pytest.fixture(scope="session")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> SmokeSweep:
    """The smoke sweep, launched three times once per run, for the tests that only read it
    (tests/smoke_support.py)."""
    from smoke_support import launch_smoke  # imports MLflow: only for the tests that use it

    return launch_smoke(tmp_path_factory.mktemp("smoke"))


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """A launch directory with its own SQLite store and TFDS data directory, for running the
    real ``mnv1-train``."""
    from sweep_support import Workspace  # imports MLflow: only for the tests that use it

    return Workspace(tmp_path)


@pytest.fixture
def sqlite_uri(tmp_path: Path, store_template: Path) -> str:
    """A fresh, empty SQLite tracking store (a copy of ``store_template``)."""
    db = tmp_path / "mlflow.db"
    shutil.copyfile(store_template, db)
    return f"sqlite:///{db}"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty TFDS data directory (``data.data_dir``)."""
    return tmp_path / "tfds"
