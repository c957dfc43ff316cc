"""Which cluster job (a SLURM job, a Ray task) a cell runs in, recorded on the cell's run.

On a cluster the process that owns a cell's run lives on another host, where the launching
process cannot tell whether it still runs (``mnv1.tracking.runs.owner_alive`` answers None). The
scheduler can: when it reports a job cancelled, preempted or lost, the SLURM and Ray launchers
mark KILLED the runs tagged with that job (``mnv1.launchers.cluster_jobs``). And a requeued SLURM
job keeps its id, so a cell that finds its own run RUNNING under its own job id knows the previous
owner was its earlier incarnation, now dead, and resumes instead of skipping.

The launchers hand the id down in ``$MNV1_SCHEDULER_JOB`` (``slurm:<job id>``, ``ray:<task id>``);
inside a SLURM job started some other way the SLURM variables are read directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

ENV_SCHEDULER_JOB = "MNV1_SCHEDULER_JOB"
TAG_SCHEDULER_JOB = "mnv1.scheduler_job"


def slurm_job_name(job_id: str) -> str:
    return f"slurm:{job_id}"


def ray_task_name(task_id: str) -> str:
    return f"ray:{task_id}"


def current_job(environ: Mapping[str, str] | None = None) -> str | None:
    """The cluster job this process runs in, as ``kind:id``; None outside any."""
    env = os.environ if environ is None else environ
    if env.get(ENV_SCHEDULER_JOB):
        return env[ENV_SCHEDULER_JOB]
    # An array task is known to squeue/scancel as <array job>_<task> (and so to submitit).
    array, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    if array and task:
        return slurm_job_name(f"{array}_{task}")
    if env.get("SLURM_JOB_ID"):
        return slurm_job_name(env["SLURM_JOB_ID"])
    return None
