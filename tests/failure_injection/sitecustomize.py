"""Test-only failure injection for end-to-end sweeps; no product code knows about it.

Python imports ``sitecustomize`` at start-up from the first directory on its path that has one.
A test puts this directory at the front of ``PYTHONPATH`` and names a cell in
``MNV1_TEST_FAIL_CELL`` (e.g. ``mnv1_a0.5_r48``); the variable reaches every process of the sweep,
and in the worker that trains that cell ``mnv1.training.run.run_training`` raises
``RuntimeError("injected failure in <cell>")`` instead of training. Every other process and cell
is untouched: the patch is applied only when (and if) ``mnv1.training.run`` is imported.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from types import ModuleType
from typing import Any

ENV_FAIL_CELL = "MNV1_TEST_FAIL_CELL"
TARGET = "mnv1.training.run"


def _patch(module: ModuleType, cell: str) -> None:
    from mnv1.config import run_name

    original = module.run_training

    def run_training(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        name = run_name(cfg.model.alpha, cfg.model.resolution, cfg.model.variant)
        if name == cell:
            raise RuntimeError(f"injected failure in {name} ({ENV_FAIL_CELL})")
        return original(cfg, *args, **kwargs)

    module.run_training = run_training


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds ``mnv1.training.run`` through the other finders and patches it once executed."""

    def __init__(self, cell: str) -> None:
        self.cell = cell

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                break
        else:
            return None
        loader = spec.loader
        execute = loader.exec_module
        cell = self.cell

        def exec_module(module: ModuleType) -> None:
            execute(module)
            _patch(module, cell)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if os.environ.get(ENV_FAIL_CELL):
    sys.meta_path.insert(0, _PatchOnImport(os.environ[ENV_FAIL_CELL]))
