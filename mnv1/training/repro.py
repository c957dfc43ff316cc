"""What a run's reproducibility covers, recorded as tags on the run.

Rerunning one config on one machine gives the same val_top1 to the last digit: the data order
and the weight initialisation are seeded by ``train.seed`` (``mnv1.training.bootstrap``,
``mnv1.data.pipeline``). Another machine need not: a short training is chaotic, and the last
bits of floating-point arithmetic that differ between two CPU models (vector width, fused
multiply-adds in oneDNN's kernels) or two GPUs move a cell by many points. Op determinism
(``train.deterministic``) removes the run-to-run nondeterminism of parallel reductions on one
machine, not the differences between machines. So each run records the four things its
numbers depend on beyond the config, and seeds as a sweep axis measure the spread.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from pathlib import Path

from mnv1.config import TrainConfig
from mnv1.tracking import schema

_CPUINFO = Path("/proc/cpuinfo")


def cpu_model() -> str:
    """The CPU's model name (Linux: from /proc/cpuinfo), else what ``platform`` knows."""
    try:
        for line in _CPUINFO.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass  # not Linux: fall back below
    return platform.processor() or platform.machine() or "unknown"


def gpu_names() -> list[str]:
    """The visible GPUs' device names as TensorFlow reports them (empty on a CPU-only host)."""
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        names.append(str(details.get("device_name", gpu.name)))
    return names


def device_kind(devices: Sequence[str], gpus: Sequence[str] | None = None) -> str:
    """``GPU: <name>`` when the run's devices include a GPU, else ``CPU: <model name>``.

    ``devices`` are the strategy's worker devices (``/job:localhost/.../device:GPU:0``);
    several different GPUs are listed once each, in order.
    """
    if any("GPU" in d.upper() for d in devices):
        found = list(dict.fromkeys(gpu_names() if gpus is None else gpus)) or ["unknown"]
        return "GPU: " + ", ".join(found)
    return f"CPU: {cpu_model()}"


def reproducibility_tags(
    train: TrainConfig,
    devices: Sequence[str],
    gpus: Sequence[str] | None = None,
    kind: str | None = None,
) -> dict[str, str]:
    """The four tags; ``kind`` is the device kind when already known (``device_kind``)."""
    # One seed drives both: keras.utils.set_random_seed(train.seed) for the initialisation and the
    # tf.data shuffle and augmentation seeds for the data order. Two tags all the same, so a
    # reader does not have to know that, and a later split of the seed keeps the schema.
    return {
        schema.TAG_OP_DETERMINISM: "on" if train.deterministic else "off",
        schema.TAG_DATA_ORDER_SEED: str(train.seed),
        schema.TAG_INIT_SEED: str(train.seed),
        schema.TAG_DEVICE_KIND: kind if kind is not None else device_kind(devices, gpus),
    }
