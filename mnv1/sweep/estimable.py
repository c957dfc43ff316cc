"""Whether a probe on this machine can estimate a grid, before one is started.

A probe costs up to ``mnv1.sweep.probe.PROBE_TIMEOUT_S`` and is worth it only when its figures
become an estimate. Two cases where they cannot, and the plan says what it would need instead:

* a cell's steps are unknown: no ``train.steps_per_epoch``, no wall-time target to choose it, and
  a training split whose size nothing knows before the dataset is prepared
  (``mnv1.data.known_sizes``);
* a study made for GPUs (``train.precision=mixed_float16``, or ``distribute.gpus_per_run`` of 1
  or more) planned where no GPU is visible, such as a cluster's login node: the probe would time
  the CPU, at the study's batch (256 for ImageNet: minutes per step), for a machine the study
  never trains on. The plan then gives the steps and images, and the estimate comes from running
  ``mnv1-plan`` on the training hardware.
"""

from __future__ import annotations

from collections.abc import Sequence

from mnv1.config import RunConfig
from mnv1.sweep.gpu_slots import visible_gpus
from mnv1.sweep.plan import split_sizes

# Keras's mixed_float16 policy is for GPUs: on a CPU it computes float16 slowly in emulation.
GPU_PRECISION = "mixed_float16"


def _gpu_setting(cfg: RunConfig) -> str | None:
    if cfg.train.precision == GPU_PRECISION:
        return f"train.precision={GPU_PRECISION}"
    if (cfg.distribute.gpus_per_run or 0) >= 1:
        return f"distribute.gpus_per_run={cfg.distribute.gpus_per_run}"
    return None


def unknown_steps(cells: Sequence[RunConfig]) -> str | None:
    """What is missing when some cell's steps per epoch cannot be known before training."""
    for cfg in cells:
        t = cfg.train
        if t.steps_per_epoch is None and t.target_minutes is None and split_sizes(cfg)[0] is None:
            return (
                f"the size of data.train_split={cfg.data.train_split!r} of "
                f"data.name={cfg.data.name!r} is not known before the dataset is prepared: an "
                "estimate needs it (prepare the dataset first, and TFDS records it) or "
                "train.steps_per_epoch=N"
            )
    return None


def no_estimate_here(cells: Sequence[RunConfig]) -> str | None:
    """Why a probe on this machine would estimate nothing for ``cells``; None when it can."""
    missing = unknown_steps(cells)
    if missing is not None:
        return missing
    settings = {s for s in map(_gpu_setting, cells) if s is not None}
    if settings and not visible_gpus():
        return (
            f"this study is made for GPUs ({', '.join(sorted(settings))}) and this machine shows "
            "none, so a probe here would time a CPU it never trains on; run mnv1-plan with the "
            "same overrides on the training hardware (e.g. inside a GPU job) for an estimate"
        )
    return None
