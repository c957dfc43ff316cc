"""Test-only failure injection for end-to-end sweeps; no product code knows about it.

Python imports ``sitecustomize`` at start-up from the first directory on its path that has one.
A test puts this directory at the front of ``PYTHONPATH`` and names a cell in
``MNV1_TEST_FAIL_CELL`` (e.g. ``mnv1_a0.5_r48``); the variable reaches every process of the sweep,
and in the worker that trains that cell ``mnv1.training.run.run_training`` raises
``RuntimeError("injected failure in <cell>")`` instead of training. Every other process and cell
is untouched: the patch is applied only when (and if) ``mnv1.training.run`` is imported.

``MNV1_TEST_FAIL_EXPORT_CELL`` names a cell whose LiteRT conversion fails instead: in that cell's
worker the int8 conversion (``mnv1.export.convert``) is asked for an input type the converter does
not offer (uint16), so the real converter raises its own error after training has finished.

``MNV1_TEST_KILL_AFTER_EPOCH=N`` makes every worker SIGKILL itself right after its checkpoint of
epoch N is complete (``latest.json`` included): a cell killed at a known point, without racing a
test's timer against training.

``MNV1_TEST_HOLD_AFTER_EPOCH=N`` with ``MNV1_TEST_HOLD_MARKER=<file>`` holds ONE worker right after
its checkpoint of epoch N: the first worker to create the marker file (exclusively) writes its
checkpoint folder's name (the run key) into it and then sleeps until it is signalled, so a test can
kill it, or its parent, at a known epoch while every other worker trains on. Polling for the first
checkpoint instead raced training: a small cell could finish every epoch between the poll and the
kill.

``MNV1_TEST_TRIAL_STANDIN=1`` replaces training in every worker by the stand-in of
``tests/tune_standin.py`` (seconds per trial, no TensorFlow): that file is served as
``mnv1.training.bootstrap`` and ``mnv1.training.run``, the two modules the worker imports to
train, so a tuner's trial processes run the real worker around a known objective.

``MNV1_TEST_RECORD_STATE=FILE`` makes every worker append one JSON line to FILE as its training
starts (``mnv1.training.run.run_training``): its cell, run id, pid, parent and orchestrator pids,
and what it found of an earlier cell's state in its own process (a module-level variable that each
worker then sets, and Keras's global name counter, which each worker then advances), so a test can
tell that each cell had a process of its own with nothing left from another.

None of the cell behaviours above reaches the plan's probe process (``python -m
mnv1.training.probe``, told apart by its command line, or, forked from the warm zygote, by the
module its main came from, ``sys.argv[0]``): the probe runs ``run_training`` on a
short run of its own, on stand-in data, and an injection aimed at a sweep's cell must not break
the plan that precedes the cells.

``MNV1_TEST_COUNT_COMPOSITIONS=FILE`` counts Hydra's config compositions: every call of the
config loader's ``load_configuration``, in any process of the launch, appends one line to FILE
(the run mode and the overrides), so a test can tell how many times one launch composed.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import signal
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ENV_FAIL_CELL = "MNV1_TEST_FAIL_CELL"
ENV_FAIL_EXPORT_CELL = "MNV1_TEST_FAIL_EXPORT_CELL"
ENV_KILL_AFTER_EPOCH = "MNV1_TEST_KILL_AFTER_EPOCH"
ENV_HOLD_AFTER_EPOCH = "MNV1_TEST_HOLD_AFTER_EPOCH"
ENV_HOLD_MARKER = "MNV1_TEST_HOLD_MARKER"
ENV_TRIAL_STANDIN = "MNV1_TEST_TRIAL_STANDIN"
STANDIN_FILE = Path(__file__).resolve().parent.parent / "tune_standin.py"
STANDIN_TARGETS = ("mnv1.training.bootstrap", "mnv1.training.run")
ENV_COUNT_COMPOSITIONS = "MNV1_TEST_COUNT_COMPOSITIONS"
ENV_RECORD_STATE = "MNV1_TEST_RECORD_STATE"
LOADER_TARGET = "hydra._internal.config_loader_impl"
TARGET = "mnv1.training.run"
EXPORT_TARGET = "mnv1.export.convert"
CHECKPOINT_TARGET = "mnv1.training.checkpoint"
# Set in the worker whose run_training trains the export-failing cell.
_EXPORT_FAILS = {"now": False}


def _patch(module: ModuleType, cell: str) -> None:
    from mnv1.config import run_name

    original = module.run_training

    def run_training(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        name = run_name(cfg.model.alpha, cfg.model.resolution, cfg.model.variant)
        if name == cell and not _in_probe():
            raise RuntimeError(f"injected failure in {name} ({ENV_FAIL_CELL})")
        return original(cfg, *args, **kwargs)

    module.run_training = run_training


def _mark_export_cell(module: ModuleType, cell: str) -> None:
    from mnv1.config import run_name

    original = module.run_training

    def run_training(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        name = run_name(cfg.model.alpha, cfg.model.resolution, cfg.model.variant)
        _EXPORT_FAILS["now"] = name == cell and not _in_probe()
        return original(cfg, *args, **kwargs)

    module.run_training = run_training


def _break_int8(module: ModuleType) -> None:
    original = module._convert

    def _convert(traced: Any, what: str, configure: Any = None) -> Any:
        if not (_EXPORT_FAILS["now"] and what == "int8"):
            return original(traced, what, configure)

        def unsupported(converter: Any) -> None:
            import tensorflow as tf

            configure(converter)
            converter.inference_input_type = tf.uint16

        return original(traced, what, unsupported)

    module._convert = _convert


def _kill_after(module: ModuleType, epoch: int) -> None:
    store = module.CheckpointStore
    original = store.save

    def save(self: Any, model: Any, state: Any) -> Any:
        written = original(self, model, state)
        if state.epochs_done == epoch and state.step_in_epoch == 0 and not _in_probe():
            os.kill(os.getpid(), signal.SIGKILL)
        return written

    store.save = save


def _hold_after(module: ModuleType, epoch: int, marker: str) -> None:
    store = module.CheckpointStore
    original = store.save

    def save(self: Any, model: Any, state: Any) -> Any:
        written = original(self, model, state)
        # Only a sweep cell's store (``.mnv1/checkpoints/<run key>``), not the probe's.
        in_sweep = self.directory.parent.name == "checkpoints"
        if in_sweep and state.epochs_done == epoch and state.step_in_epoch == 0:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:  # another worker is the one held
                return written
            # One short write: the test reads the key once the file is non-empty.
            os.write(fd, self.directory.name.encode())
            os.close(fd)
            while True:
                time.sleep(3600)
        return written

    store.save = save


def _record_state(module: ModuleType, path: str) -> None:
    original = module.run_training

    def run_training(cfg: Any, *args: Any, **kwargs: Any) -> Any:
        import json

        from mnv1.config import run_name

        argv = sys.argv
        # Keras as the run imported it (the tuning tests' stand-in imports none).
        keras = sys.modules.get("keras")
        record = {
            "cell": run_name(cfg.model.alpha, cfg.model.resolution, cfg.model.variant),
            "run_log": argv[argv.index("--run-log") + 1] if "--run-log" in argv[:-1] else None,
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "orchestrator_pid": os.environ.get("MNV1_ORCHESTRATOR_PID"),
            "parent_pid": os.environ.get("MNV1_WORKER_PARENT_PID"),
            # What an earlier cell in this same process would have left behind.
            "module_state_seen": getattr(module, "_TEST_STATE", None),
            "keras_uid": None if keras is None else keras.backend.get_uid("mnv1_test_state"),
        }
        module._TEST_STATE = record["cell"]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (json.dumps(record) + "\n").encode())
        finally:
            os.close(fd)
        return original(cfg, *args, **kwargs)

    module.run_training = run_training


def _count_compositions(module: ModuleType, path: str) -> None:
    loader = module.ConfigLoaderImpl
    original = loader.load_configuration

    def load_configuration(
        self: Any, config_name: Any, overrides: Any, run_mode: Any, *args: Any, **kwargs: Any
    ) -> Any:
        # One line per composition, written at once (O_APPEND): processes of a launch share FILE.
        line = f"{run_mode.name} {' '.join(overrides)}\n"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        return original(self, config_name, overrides, run_mode, *args, **kwargs)

    loader.load_configuration = load_configuration


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds each module named in ``patches`` through the other finders and patches it once it
    is executed."""

    def __init__(self, patches: dict[str, Any]) -> None:
        self.patches = patches  # module name -> patch(module)

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in self.patches:
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
        patch = self.patches[name]

        def exec_module(module: ModuleType) -> None:
            execute(module)
            patch(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


class _StandInOnImport(importlib.abc.MetaPathFinder):
    """Serves each module named in ``names`` from the file ``source`` instead of its own."""

    def __init__(self, names: tuple[str, ...], source: Path) -> None:
        self.names = names
        self.source = source

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name not in self.names:
            return None
        return importlib.util.spec_from_file_location(name, self.source)


# The plan's probe (``python -m mnv1.training.probe``): no cell behaviour applies there.
_PROBE = "mnv1.training.probe" in getattr(sys, "orig_argv", ())


def _in_probe() -> bool:
    """Whether this process is the plan's probe: started as one, or forked by the warm zygote
    (whose patches were applied at its imports) to run the probe's main, which sets
    ``sys.argv[0]`` to the probe module's file as ``python -m`` would."""
    return _PROBE or Path(sys.argv[0]).parts[-3:] == ("mnv1", "training", "probe.py")


_CELLS = not _PROBE

if _CELLS and os.environ.get(ENV_TRIAL_STANDIN) == "1":
    sys.meta_path.insert(0, _StandInOnImport(STANDIN_TARGETS, STANDIN_FILE))

_PATCHES: dict[str, Any] = {}
if _CELLS and os.environ.get(ENV_FAIL_CELL):
    _PATCHES[TARGET] = lambda module: _patch(module, os.environ[ENV_FAIL_CELL])
elif _CELLS and os.environ.get(ENV_FAIL_EXPORT_CELL):
    _PATCHES[TARGET] = lambda module: _mark_export_cell(module, os.environ[ENV_FAIL_EXPORT_CELL])
    _PATCHES[EXPORT_TARGET] = _break_int8
if _CELLS and os.environ.get(ENV_KILL_AFTER_EPOCH):
    _epoch = int(os.environ[ENV_KILL_AFTER_EPOCH])
    _PATCHES[CHECKPOINT_TARGET] = lambda module: _kill_after(module, _epoch)
if _CELLS and os.environ.get(ENV_HOLD_AFTER_EPOCH) and os.environ.get(ENV_HOLD_MARKER):
    _held = int(os.environ[ENV_HOLD_AFTER_EPOCH])
    _marker = os.environ[ENV_HOLD_MARKER]
    _PATCHES[CHECKPOINT_TARGET] = lambda module: _hold_after(module, _held, _marker)
if os.environ.get(ENV_RECORD_STATE):
    _record_path = os.environ[ENV_RECORD_STATE]
    _PATCHES[TARGET] = lambda module: _record_state(module, _record_path)
if os.environ.get(ENV_COUNT_COMPOSITIONS):
    _count_path = os.environ[ENV_COUNT_COMPOSITIONS]
    _PATCHES[LOADER_TARGET] = lambda module: _count_compositions(module, _count_path)
if _PATCHES:
    sys.meta_path.insert(0, _PatchOnImport(_PATCHES))
