"""Shared fixtures: each test gets its own output directory and tracking store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

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
