"""What a run needs from the host that trains it, checked before anything starts.

The training process checks these itself (``mnv1.training.strategy`` refuses a multi-worker
``TF_CONFIG``, ``mnv1.training.bootstrap`` a ``distribute.gpus_per_run`` above the GPUs it sees,
``plan_strategy`` a ``distribute.devices`` entry it does not have), but by then the sweep has
opened its parent run and the cell its own, which ends FAILED. What the launching host can know
in advance is asked here instead, in plain Python (no TensorFlow), so ``mnv1-train`` exits 2
with the same message and nothing created:

* ``TF_CONFIG`` naming more than one worker, or not a cluster spec at all: the cells inherit
  this environment (keras-team/keras#20585: one run never spans hosts);
* ``distribute.gpus_per_run`` above the GPUs visible here, and ``distribute.devices`` naming a
  GPU a cell will not see, when the cells train on this host (the basic and joblib launchers;
  on SLURM or Ray they train on other machines, whose GPUs are not known here).

The GPU list comes from the caller (``mnv1.sweep.gpu_slots.visible_gpus``, the same list the GPU
slots are cut from), so this module stays below the sweep layer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from mnv1.config import RunConfig, device_id, rule
from mnv1.training.strategy import check_tf_config


def host_problems(
    cfg: RunConfig, gpus: Sequence[str] | None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Why ``cfg`` cannot train on this host; [] when it can. ``gpus``: the GPU ids a cell
    launched from here would see, or None when cells train elsewhere (GPU checks skipped)."""
    found = []
    try:
        check_tf_config(environ)
    except ValueError as err:
        found.append(str(err))
    if gpus is not None:
        found += _gpu_problems(cfg, list(gpus))
    return found


def grid_host_problems(
    cells: Iterable[RunConfig], gpus: Sequence[str] | None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """``host_problems`` of every cell, each message once (most are the same for every cell)."""
    seen: dict[str, None] = {}
    for cfg in cells:
        for message in host_problems(cfg, gpus, environ):
            seen.setdefault(message, None)
    return list(seen)


def _gpu_problems(cfg: RunConfig, gpus: list[str]) -> list[str]:
    d = cfg.distribute
    shown = f"{len(gpus)} GPU(s) ({', '.join(gpus) or 'none'})"
    per_run = d.gpus_per_run
    if rule("distribute.gpus_per_run").check(per_run) is not None:
        return []  # its own rule reports it
    if per_run is not None and per_run > len(gpus):
        return [
            f"distribute.gpus_per_run={per_run}: this host shows {shown} to the cells it "
            "launches; lower it, set it to 0 to train on the CPU, or null to use every "
            "visible GPU"
        ]
    if rule("distribute.devices").check(d.devices) is not None or not d.devices:
        return []
    # A cell sees its slot's gpus_per_run GPUs (numbered from 0), else every visible one.
    seen = len(gpus) if per_run is None else per_run
    wanted = [name for name in d.devices if (found := device_id(name)) and found[0] == "GPU"]
    missing = [name for name in wanted if device_id(name)[1] >= seen]  # type: ignore[index]
    if not missing:
        return []
    where = (
        f"distribute.gpus_per_run={per_run} GPU(s)"
        if per_run is not None
        else f"this host's {shown}"
    )
    return [
        f"distribute.devices={d.devices!r}: {', '.join(missing)} is not among the "
        f"{seen} GPU(s) a cell will see ({where}, numbered from 0)"
    ]
