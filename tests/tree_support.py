"""Copies of the source tree for tests that install it or lint it in a temporary directory."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_sources(names: Iterable[str], target: Path) -> Path:
    """Copy the repository's files and folders ``names`` into ``target`` (no byte-code)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, target / name)
    return target
