"""What the cluster launchers share: a cell's GPU request, and settling a cell whose job died.

Hydra's submitit and Ray launchers gather results with ``job.results()`` / ``ray.get``, which
raise at the first cell whose job was cancelled, preempted or lost: the sweep would stop
waiting for the other cells, its end (status matrix, report) would never run, and the dead
cell's run would stay RUNNING, owned by a process on another host that nobody can check. Our
launchers wait for every job instead, and settle each dead one here: its runs (found through
the scheduler-job tag, ``mnv1.sweep.scheduler``) are marked KILLED, and the sweep sees a
finished job whose cell did not finish, like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn, JobStatus
from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from mnv1.sweep.orchestrate import SweepRef

log = logging.getLogger(__name__)

DEAD = "KILLED"


def gpus_wanted(gpus_per_run: int | None) -> int:
    """GPUs a cell's cluster job asks for: ``distribute.gpus_per_run``, none when unset or 0.

    On a cluster a job sees only what it asked for, so a GPU sweep sets ``gpus_per_run``
    (``distribute=gpu_slots`` sets 1); the scheduler then narrows ``CUDA_VISIBLE_DEVICES`` to
    the job's GPUs and the cell uses them all.
    """
    return int(gpus_per_run) if gpus_per_run else 0


def slurm_gpu_params(params: Mapping[str, Any], gpus_per_run: int | None) -> dict[str, Any]:
    """The submitit SLURM parameters with the cell's GPU request (``--gpus-per-task``).

    A GPU request set explicitly on the launcher (``gpus_per_node``, ``gpus_per_task`` or a
    ``gres``) wins: some sites only accept one form.
    """
    out = dict(params)
    keys = ("gpus_per_node", "gpus_per_task", "gres")
    explicit = any(out.get(k) not in (None, 0, "") for k in keys)
    if not explicit:
        gpus = gpus_wanted(gpus_per_run)
        out["gpus_per_task"] = gpus or None
        out["gpus_per_node"] = None
    return out


def ray_remote_options(remote: Mapping[str, Any], gpus_per_run: int | None) -> dict[str, Any]:
    """``ray.remote`` options for one cell: ``num_gpus`` from the cell's GPU request unless set
    explicitly, and no automatic retry (a cell whose worker died ends KILLED and resumes from
    its checkpoint at the next launch, as on every other launcher)."""
    out = dict(remote)
    if out.get("num_gpus") is None:
        out["num_gpus"] = gpus_wanted(gpus_per_run)
    out.setdefault("max_retries", 0)
    return out


def sweep_of(config: DictConfig) -> SweepRef | None:
    """The sweep a launcher launches, from the job environment its sweeper set on the master
    config (``mnv1.hydra_app.sweeper``); None outside a sweep."""
    from mnv1.sweep.orchestrate import SweepRef

    env = OmegaConf.select(config, "hydra.job.env_set", default=None) or {}
    return SweepRef.from_env({str(k): str(v) for k, v in env.items()})


def settle_dead_job(
    overrides: Sequence[str],
    job: str,
    how: str,
    sweep: SweepRef | None,
    tag: str = "mnv1.scheduler_job",
) -> JobReturn:
    """Mark KILLED the runs of a cluster job that died, and stand in for its result."""
    from mnv1.tracking import runs

    cell = " ".join(overrides)
    marked: list[str] = []
    if sweep is not None:
        reason = f"cluster job {job} ended {how}"
        found = runs.mark_orphans(sweep.uri, sweep.experiment_id, tag, job, reason)
        marked = [r.run_id for r in found]
    what = f"run {', '.join(marked)} marked KILLED" if marked else "no run of it was RUNNING"
    message = f"cell [{cell}]: cluster job {job} ended {how}; {what}"
    log.warning(message)
    print(message, flush=True)
    return JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=DEAD)
