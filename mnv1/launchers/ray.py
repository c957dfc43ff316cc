"""``hydra/launcher=ray_cluster``: each cell a Ray task on a running Ray cluster.

Built on ``hydra-ray-launcher``'s ``RayLauncher`` (its ``ray.init`` and job-running code) with
mnv1's additions:

* ``ray.init`` joins the cluster at ``hydra.launcher.ray.init.address`` (``$RAY_ADDRESS``, else
  ``auto``: the cluster this host belongs to); ``mnv1-train`` checks that a head answers there
  before anything starts (``mnv1.launchers.cluster_check``).
* The task's ``num_gpus`` comes from ``distribute.gpus_per_run``, and a task is never retried by
  Ray itself (``mnv1.launchers.cluster_jobs.ray_remote_options``).
* The task runs in the launch directory (a shared file system, as with SLURM), so the relative
  paths of a sweep (outputs, checkpoints, a SQLite store) mean the same on every node.
* The launch waits for every task and settles those whose Ray worker died
  (``mnv1.launchers.cluster_jobs.settle_dead_job``): their runs end KILLED and resume at the next
  launch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher
from omegaconf import DictConfig, OmegaConf, open_dict

from mnv1.launchers.cluster_jobs import ray_remote_options, settle_dead_job, sweep_of
from mnv1.sweep.scheduler import ENV_SCHEDULER_JOB, ray_task_name

log = logging.getLogger(__name__)


def _run_cell_task(launch_dir: str, job: dict[str, Any]) -> JobReturn:
    """The body of one Ray task: the Hydra job of one cell, in the launch directory."""
    import ray
    from hydra_plugins.hydra_ray_launcher._launcher_util import _run_job

    os.environ[ENV_SCHEDULER_JOB] = ray_task_name(ray.get_runtime_context().get_task_id() or "")
    os.chdir(launch_dir)
    return _run_job(**job)


class RayClusterLauncher(RayLauncher):
    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        gpus = OmegaConf.select(config, "distribute.gpus_per_run", default=None)
        remote = OmegaConf.to_container(self.ray_cfg.remote or {}, resolve=True)
        assert isinstance(remote, dict)
        self.remote_options = ray_remote_options({str(k): v for k, v in remote.items()}, gpus)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        # Ray takes seconds to import: only a launch loads it, not Hydra's plugin scan.
        import ray
        from hydra_plugins.hydra_ray_launcher._launcher_util import start_ray

        setup_globals()
        assert self.config is not None and self.hydra_context is not None
        assert self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        start_ray(self.ray_cfg.init)
        task = ray.remote(**self.remote_options)(_run_cell_task)
        refs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            sweep_config = self.hydra_context.config_loader.load_sweep_config(
                self.config, list(overrides)
            )
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = f"job_id_for_{idx}"
                sweep_config.hydra.job.num = idx
            refs.append(
                task.remote(
                    str(Path.cwd()),
                    {
                        "hydra_context": self.hydra_context,
                        "sweep_config": sweep_config,
                        "task_function": self.task_function,
                        "singleton_state": Singleton.get_state(),
                    },
                )
            )
        names = [ray_task_name(ref.task_id().hex()) for ref in refs]
        print(f"mnv1-train: {len(refs)} cell(s) submitted as Ray tasks", flush=True)
        returns: list[JobReturn] = []
        sweep = sweep_of(self.config)
        for ref, name, overrides in zip(refs, names, job_overrides, strict=True):
            try:
                returns.append(ray.get(ref))
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:
                returns.append(settle_dead_job(overrides, name, type(exc).__name__, sweep))
            except ray.exceptions.RayError as exc:
                # The task died some other way (a failure of Ray, not of training).
                how = f"{type(exc).__name__}: {exc}"
                returns.append(settle_dead_job(overrides, name, how, sweep))
        return returns
