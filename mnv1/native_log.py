"""Keep TensorFlow's native start-up lines off the terminal; show whatever else it says.

Importing TensorFlow 2.21 writes, from C++ and before Python can configure anything, absl's
"All log messages before absl::InitializeLog() is called are written to STDERR", INFO lines
(``port.cc`` oneDNN, ``cudart_stub.cc``, ``cpu_feature_guard.cc``) and, on a host without an
NVIDIA driver, "failed call to cuInit" at the first device query. ``TF_CPP_MIN_LOG_LEVEL`` no
longer reaches these absl lines (it only governs TensorFlow's own logging), so the console
scripts and the training worker call :func:`install`: the first ``import tensorflow`` then runs
with file descriptor 2 captured, together with a device query (the documented way to list
devices before configuring them, so ``mnv1.training.bootstrap`` still can), and afterwards every
captured line is written back except those start-up lines. Errors (``E``/``F`` lines other than
the driver-less ``cuInit`` one), Python warnings and tracebacks all still show.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

# absl's preamble, and its records: "I0000 00:00:1796079332.745815   32372 port.cc:153] text"
# (before absl is initialised the seconds field holds the whole Unix time).
_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_RECORD = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] ")
# The second line of cpu_feature_guard's INFO record.
_CONTINUATION = "To enable the following instructions:"
_NO_DRIVER = "Could not find cuda drivers on your machine"
_CUINIT = "failed call to cuInit"


def start_up_noise(lines: Sequence[str]) -> list[bool]:
    """For each captured line, whether it is start-up noise to drop."""
    no_driver = any(_NO_DRIVER in line for line in lines)
    noise = []
    for line in lines:
        record = _RECORD.match(line)
        noise.append(
            line.rstrip("\n") == _PREAMBLE
            or line.startswith(_CONTINUATION)
            or (record is not None and record.group(1) in "IW")
            # Without a driver there is no GPU to initialise: the cuInit error restates that.
            or (record is not None and no_driver and _CUINIT in line)
        )
    return noise


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of ``tensorflow`` with stderr captured and filtered."""

    def __init__(self, loader: Any, finder: _QuietFinder) -> None:
        self._loader = loader
        self._finder = finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self._loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Once is enough: TensorFlow is being imported now.
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        # The module keeps its real loader (importlib.resources and friends ask it).
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with filtered_stderr(start_up_noise):
            self._loader.exec_module(module)
            module.config.list_physical_devices()  # initialises the platforms: cuInit


@contextlib.contextmanager
def filtered_stderr(noise: Callable[[Sequence[str]], list[bool]]) -> Iterator[None]:
    """Capture file descriptor 2 (C++ writes there, past Python) for the span of the block, then
    write back every line that ``noise`` does not mark."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            shown = [line for line, drop in zip(lines, noise(lines), strict=True) if not drop]
            if shown:
                os.write(2, "".join(shown).encode())


# What the LiteRT converter and interpreter say on every export (mnv1.export): the quantizer's
# settings line, the XNNPACK delegate's INFO line, the converter's advice to pass trackable_obj
# (mnv1.export.convert leaves it out on purpose), and absl INFO/WARNING records.
_EXPORT_NOISE = (
    "fully_quantize: ",
    "INFO: Created TensorFlow Lite XNNPACK delegate",
    "WARNING:absl:Please consider providing the trackable_obj argument",
)


def export_noise(lines: Sequence[str]) -> list[bool]:
    """For each captured line of a LiteRT conversion or interpreter start, whether to drop it."""
    return [
        line.startswith(_EXPORT_NOISE)
        or ((record := _RECORD.match(line)) is not None and record.group(1) in "IW")
        for line in lines
    ]


@contextlib.contextmanager
def quiet_export() -> Iterator[None]:
    """Around a LiteRT conversion or interpreter start: its routine lines are dropped unless
    TensorFlow's logging was asked for (``--verbose``); errors still show."""
    if not quiet_requested():
        yield
        return
    with filtered_stderr(export_noise):
        yield


class _QuietFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` through the other finders and hands it a quiet loader.

    It stays installed until TensorFlow is actually imported: libraries ask
    ``importlib.util.find_spec("tensorflow")`` only to learn whether it is there (MLflow, TFDS).
    """

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _QuietLoader(spec.loader, self)
                return spec
        return None


def quiet_requested(environ: dict[str, str] | None = None) -> bool:
    """Whether TensorFlow was asked to be quiet: ``TF_CPP_MIN_LOG_LEVEL`` >= 1 (the console
    scripts set 2 unless ``--verbose``; the workers they start inherit it)."""
    value = (os.environ if environ is None else environ).get("TF_CPP_MIN_LOG_LEVEL", "0")
    return value.strip().isdigit() and int(value) >= 1


def install() -> None:
    """Filter TensorFlow's start-up lines at its first import in this process, if
    :func:`quiet_requested` (no-op once TensorFlow is imported or a filter is installed)."""
    if not quiet_requested() or "tensorflow" in sys.modules:
        return
    if not any(isinstance(f, _QuietFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFinder())
