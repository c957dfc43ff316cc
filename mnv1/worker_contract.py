"""What an orchestrator and the process it spawns agree on: command, environment, exit, death.

Both sides import this module: the sweep's orchestrator (``mnv1.sweep.orchestrate``) and the
plan's probe parent (``mnv1.sweep.probe``) spawn; the training worker (``mnv1.training.worker``)
and the probe process (``mnv1.training.probe``) are spawned. It sits below both layers, so neither
reaches into the other for a name.

* The command: ``python -m WORKER_MODULE --config run.json --run-log mlflow:RUN_ID``, either run
  as such (a cold spawn) or, for the same arguments, forked from a warm zygote that has imported
  the worker's modules already (``mnv1.training.zygote``, driven by ``mnv1.sweep.warm``).
* The environment: ``ENV_SPAWN_TIME`` (when the parent asked for the child, read back by
  ``spawn_seconds``), ``ENV_ORCHESTRATOR_PID`` (the orchestrator that asked for it), and, for a
  forked worker, ``ENV_PARENT_PID`` (the zygote that forked it, whom it must not outlive).
* The exit: ``EXIT_FINISHED``, ``EXIT_FAILED`` (the run failed; traceback logged),
  ``EXIT_USAGE`` (bad command line or unreadable config), or death by a signal.
* Dying with the parent: the child arms it itself (``die_with_orchestrator``), once it runs;
  nothing is run between fork and exec, because ``preexec_fn`` is unsafe in a multi-threaded
  parent (a Ray worker, a tuner with its stderr pump threads). A forked worker arms it on the
  zygote, which ends (and ends its children) when its orchestrator does.

Pure Python; nothing heavy is imported (the worker reads it before TensorFlow).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import time
from collections.abc import Mapping

WORKER_MODULE = "mnv1.training.worker"
# The plan's probe process: spawned as a worker is (cold, or forked from the same zygote), so the
# start-up it measures is the start-up a cell will have.
PROBE_MODULE = "mnv1.training.probe"
# What a zygote may be asked to become: each module has ``process_main(argv)``.
SPAWNABLE = (WORKER_MODULE, PROBE_MODULE)

# The wall-clock time (``time.time()``) at which the parent spawned the child, so the child can
# tell how long it took to start (metric ``time_process_start_s``).
ENV_SPAWN_TIME = "MNV1_SPAWN_TIME"
# The pid of the orchestrator that spawned the child: the child dies when that process does.
ENV_ORCHESTRATOR_PID = "MNV1_ORCHESTRATOR_PID"
# Set only in a worker forked by a zygote: the zygote's pid, the parent whose death the worker
# follows instead (the zygote follows the orchestrator's, mnv1.training.zygote).
ENV_PARENT_PID = "MNV1_WORKER_PARENT_PID"

EXIT_FINISHED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def spawn_env(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus what a spawned child reads: the spawn time and this process's pid."""
    env = dict(base)
    # A zygote sets it for the worker it forks; a process this one spawns has another parent.
    env.pop(ENV_PARENT_PID, None)
    env[ENV_SPAWN_TIME] = f"{time.time():.6f}"
    env[ENV_ORCHESTRATOR_PID] = str(os.getpid())
    return env


def spawn_seconds(
    environ: Mapping[str, str] | None = None, now: float | None = None
) -> float | None:
    """Seconds since the parent spawned this process (``$MNV1_SPAWN_TIME``), if it says."""
    env = os.environ if environ is None else environ
    try:
        spawned = float(env[ENV_SPAWN_TIME])
    except (KeyError, ValueError):
        return None
    return max(0.0, (time.time() if now is None else now) - spawned)


def die_with_orchestrator(environ: Mapping[str, str] | None = None) -> bool:
    """Ask Linux to send this process SIGTERM when its orchestrator dies; True if armed.

    An orchestrator killed outright (SIGKILL, a Ray worker killed by its raylet, a tuner killed
    mid-trial) cannot stop its child, which would train on as an orphan into a run already marked
    KILLED, and whose checkpoint a relaunch resumes. Armed here, in the child, rather than between
    fork and exec (see the module docstring). The parent check closes the race of an orchestrator
    that died before the arming. A worker forked by a zygote (``ENV_PARENT_PID``) arms it on the
    zygote, its parent: Linux signals a child only when its own parent dies.
    """
    env = os.environ if environ is None else environ
    expected = env.get(ENV_PARENT_PID) or env.get(ENV_ORCHESTRATOR_PID, "")
    if not sys.platform.startswith("linux") or not expected.isdigit():
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return False
    if os.getppid() != int(expected):
        os.kill(os.getpid(), signal.SIGTERM)
    return True
