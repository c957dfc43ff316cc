"""GPU slots: parallel cells on one host each get their own slice of the visible GPUs.

With ``distribute.gpus_per_run = g`` and N visible GPUs there are N // g slots; a cell takes a
free slot (an exclusive file lock per slot, so cells of different sweeps on the same host share
the same slots), trains with ``CUDA_VISIBLE_DEVICES`` set to that slot's GPUs, and frees it when
its process ends. A cell that finds every slot taken waits for one. The lock dies with its
process, so a killed cell never leaves a slot taken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

POLL_SECONDS = 1.0


def visible_gpus() -> list[str]:
    """The GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` where set (a launcher such as
    SLURM or Ray may have narrowed it already), else every GPU ``nvidia-smi`` lists."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def slices(gpus: list[str], gpus_per_run: int) -> list[list[str]]:
    """Disjoint slices of ``gpus_per_run`` GPUs; leftover GPUs stay unused."""
    if gpus_per_run < 1:
        raise ValueError(f"distribute.gpus_per_run must be >= 1, got {gpus_per_run}")
    if len(gpus) < gpus_per_run:
        raise ValueError(
            f"distribute.gpus_per_run={gpus_per_run} but this host shows only {len(gpus)} GPU(s) "
            f"({', '.join(gpus) or 'none'}): lower gpus_per_run or set it to null"
        )
    count = len(gpus) // gpus_per_run
    return [gpus[i * gpus_per_run : (i + 1) * gpus_per_run] for i in range(count)]


def default_lock_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"mnv1-gpu-slots-{os.getuid()}"


@contextmanager
def gpu_slot(
    gpus_per_run: int | None, lock_dir: Path | None = None, gpus: list[str] | None = None
) -> Iterator[str | None]:
    """Hold a free slot for the duration; yields its ``CUDA_VISIBLE_DEVICES`` value.

    Yields None (no restriction) when ``gpus_per_run`` is unset or 0 (the run hides its GPUs
    itself) or the host has no GPU: every cell then sees the same devices, which is right for the
    sequential launcher and for CPUs.
    """
    available = visible_gpus() if gpus is None else gpus
    if not gpus_per_run or not available:
        yield None
        return
    folder = lock_dir or default_lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    candidates = slices(available, gpus_per_run)
    while True:
        for devices in candidates:
            lock = FileLock(str(folder / f"gpu-{'-'.join(devices)}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            try:
                yield ",".join(devices)
            finally:
                lock.release()
            return
        time.sleep(POLL_SECONDS)
