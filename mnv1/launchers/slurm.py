"""``hydra/launcher=slurm``: Hydra's submitit SLURM launcher, with mnv1's two additions.

* The cell's GPU request comes from ``distribute.gpus_per_run`` (``--gpus-per-task``), so the
  study and the job cannot disagree (``mnv1.launchers.cluster_jobs.slurm_gpu_params``).
* The launch waits for every job and settles the ones SLURM cancelled or lost
  (``mnv1.launchers.cluster_jobs.settle_dead_job``) instead of raising at the first, so the sweep
  always reaches its end, and a cancelled cell's run ends KILLED rather than RUNNING.

Each cell runs in an array task: ``python -m submitit.core._submit`` unpickles this launcher on
the node and runs the Hydra job there, which trains the cell in a worker process as on any other
launcher. Preemption or a time limit (SIGUSR2 from ``signal_delay_s``) makes submitit requeue the
same job; the requeued job finds its own run under its own job id and resumes it from the last
epoch checkpoint (``mnv1.sweep.orchestrate``).
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, filter_overrides
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import (
    SlurmLauncher as SubmititSlurmLauncher,
)
from omegaconf import DictConfig, OmegaConf

from mnv1.launchers.cluster_jobs import settle_dead_job, slurm_gpu_params, sweep_of
from mnv1.sweep.scheduler import slurm_job_name

if TYPE_CHECKING:
    from mnv1.sweep.orchestrate import SweepRef

log = logging.getLogger(__name__)

POLL_S = 2.0
# How long a job must be out of the queue without a result file before it counts as dead.
RESULT_GRACE_S = 6.0


class SlurmLauncher(SubmititSlurmLauncher):
    params: dict[str, Any]

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        gpus = OmegaConf.select(config, "distribute.gpus_per_run", default=None)
        self.params = slurm_gpu_params(self.params, gpus)

    def executor(self) -> Any:
        """The submitit executor with this launcher's parameters (as the plugin builds it)."""
        import submitit

        init_keys = {"submitit_folder", "max_num_timeout"}
        executor = submitit.AutoExecutor(
            cluster=self._EXECUTOR,
            folder=self.params["submitit_folder"],
            **{f"{self._EXECUTOR}_max_num_timeout": self.params.get("max_num_timeout", 0)},
        )
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{
                k if k in shared else f"{self._EXECUTOR}_{k}": v
                for k, v in self.params.items()
                if k not in init_keys
            }
        )
        return executor

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None and job_overrides
        executor = self.executor()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            os.chmod(sweep_dir, mode=int(str(self.config.hydra.sweep.mode), 8))
        log.info("Submitit 'slurm' sweep output dir: %s", sweep_dir)
        job_params: list[Any] = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            job_params.append(
                (
                    list(overrides),
                    "hydra.sweep.dir",
                    idx,
                    f"job_id_for_{idx}",
                    Singleton.get_state(),
                )
            )
        jobs = executor.map_array(self, *zip(*job_params, strict=True))
        print(
            f"mnv1-train: {len(jobs)} cell(s) submitted as SLURM jobs "
            f"{', '.join(j.job_id for j in jobs)}",
            flush=True,
        )
        return wait_for_jobs(jobs, job_overrides, sweep_of(self.config))


def queued_jobs(job_ids: Sequence[str]) -> set[str] | None:
    """Which of these jobs SLURM still holds (pending, running, requeued, completing); None when
    ``squeue`` does not answer (then nothing is concluded from this poll)."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    try:
        out = subprocess.run(
            ["squeue", "--noheader", "--array", "--format=%i", f"--jobs={','.join(arrays)}"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        # squeue refuses job ids it no longer knows: those jobs have all left the queue.
        return set() if "Invalid job id" in out.stderr else None
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def final_state(job_id: str) -> str:
    """How a job that left the queue ended (``scontrol`` remembers it for MinJobAge)."""
    try:
        out = subprocess.run(
            ["scontrol", "show", "job", "--oneliner", job_id],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    found = re.search(r"JobState=(\S+)", out)
    return found.group(1) if found else "without a result"


def wait_for_jobs(
    jobs: Sequence[Any], job_overrides: Sequence[Sequence[str]], sweep: SweepRef | None
) -> list[JobReturn]:
    """Every job's result, in order; a job that left the queue without one is settled as dead.

    submitit's own ``job.results()`` cannot be used to wait: it learns that a job ended only
    from ``sacct``, which needs the accounting daemon (slurmdbd), and waits forever for a
    cancelled job on a cluster without one. A finished job's result file, and ``squeue``, are
    always there.
    """
    from submitit.core.utils import UncompletedJobError

    returns: dict[int, JobReturn] = {}
    gone_since: dict[int, float] = {}
    while len(returns) < len(jobs):
        pending = [i for i in range(len(jobs)) if i not in returns]
        queued = queued_jobs([jobs[i].job_id for i in pending])
        for i in pending:
            job, overrides = jobs[i], job_overrides[i]
            if job.paths.result_pickle.exists():
                try:
                    returns[i] = job.results()[0]
                except UncompletedJobError:  # the job itself failed (its traceback is logged)
                    returns[i] = settle_dead_job(
                        overrides, slurm_job_name(job.job_id), "FAILED", sweep
                    )
            elif queued is not None and job.job_id not in queued:
                # Out of the queue without a result: dead, once a shared file system has had
                # time to show a result written just before the job left.
                first = gone_since.setdefault(i, time.monotonic())
                if time.monotonic() - first >= RESULT_GRACE_S:
                    state = final_state(job.job_id)
                    returns[i] = settle_dead_job(
                        overrides, slurm_job_name(job.job_id), state, sweep
                    )
            else:
                gone_since.pop(i, None)
        if len(returns) < len(jobs):
            time.sleep(POLL_S)
    return [returns[i] for i in range(len(jobs))]
