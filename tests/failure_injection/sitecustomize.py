"""Test-only failure injection for end-to-end sweeps; no product code knows about it.

Python imports ``sitecustomize`` at start-up from the first directory on its path that has one.
A test puts this directory at the front of ``PYTHONPATH`` and names a cell in
``MNV1_TEST_FAIL_CELL`` (e.g. ``mnv1_a0.5_r48``); the variable reaches every process of the sweep,
and in the worker that trains that cell ``mnv1.training.run.run_training`` raises
``RuntimeError("injected failure in <cell>")`` instead of training. Every other process and cell
is untouched: the patch is applied only when (and if) ``mnv1.training.run`` is imported.

``MNV1_TEST_KILL_AFTER_EPOCH=N`` instead makes every worker SIGKILL itself right after its
checkpoint of epoch N is complete (``latest.json`` included): a cell killed at a known point,
without racing a test's timer against training.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import signal
import sys
from types import ModuleType
from typing import Any

ENV_FAIL_CELL = "MNV1_TEST_FAIL_CELL"
ENV_KILL_AFTER_EPOCH = "MNV1_TEST_KILL_AFTER_EPOCH"
TARGET = "mnv1.training.run"
CHECKPOINT_TARGET = "mnv1.training.checkpoint"


def _patch(module: ModuleType, cell: str) -> None:
    from mnv1.config import run_name

    original = module.run_training

    def run_training(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        name = run_name(cfg.model.alpha, cfg.model.resolution, cfg.model.variant)
        if name == cell:
            raise RuntimeError(f"injected failure in {name} ({ENV_FAIL_CELL})")
        return original(cfg, *args, **kwargs)

    module.run_training = run_training


def _kill_after(module: ModuleType, epoch: int) -> None:
    store = module.CheckpointStore
    original = store.save

    def save(self: Any, model: Any, state: Any) -> Any:
        written = original(self, model, state)
        if state.epochs_done == epoch and state.step_in_epoch == 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return written

    store.save = save


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds ``target`` through the other finders and applies ``patch`` once it is executed."""

    def __init__(self, target: str, patch: Any) -> None:
        self.target = target
        self.patch = patch

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != self.target:
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
        patch = self.patch

        def exec_module(module: ModuleType) -> None:
            execute(module)
            patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if os.environ.get(ENV_FAIL_CELL):
    _cell = os.environ[ENV_FAIL_CELL]
    sys.meta_path.insert(0, _PatchOnImport(TARGET, lambda module: _patch(module, _cell)))
if os.environ.get(ENV_KILL_AFTER_EPOCH):
    _epoch = int(os.environ[ENV_KILL_AFTER_EPOCH])
    sys.meta_path.insert(
        0, _PatchOnImport(CHECKPOINT_TARGET, lambda module: _kill_after(module, _epoch))
    )
