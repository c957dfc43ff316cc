"""KerasTuner's own distributed mode: a chief serving the oracle over gRPC, and K workers.

``tune.workers=K`` makes ``mnv1-tune`` a launcher, per cell: it opens the search's parent run,
picks a free port, starts the chief (``KERASTUNER_TUNER_ID=chief``) and K workers
(``worker0`` …), all the same ``mnv1-tune`` command line restricted to the cell, with
``KERASTUNER_ORACLE_IP`` and ``KERASTUNER_ORACLE_PORT`` pointing at the chief. Workers on other
hosts join the same search with the same three variables (see README, "Tuning").

The launcher restarts a worker that died under its id: the oracle hands the trial it held back
to that id (another id would never get it, and the chief would wait for it for ever), and the
trial resumes its own MLflow run from its checkpoint. If the chief dies, everything stops. When
the chief's service ends, the chief saves the oracle (``mnv1.tune.tuner``) and the launcher
summarises the trials onto the parent run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from mnv1.config import RunConfig, TuneConfig
from mnv1.tracking import runs
from mnv1.tracking.store import ensure_experiment, resolve_uri
from mnv1.tune.project import project_for
from mnv1.tune.search import (
    SearchOutcome,
    SearchRef,
    finish_search,
    hold_search,
    open_search,
)
from mnv1.tune.space import Space
from mnv1.tune.trial import ENV_PARENT

CHIEF = "chief"
MAX_RESTARTS = 3  # per worker id: a trial that kills its worker every time is not retried forever
POLL_SECONDS = 0.5
WORKER_EXIT_GRACE = 60.0  # seconds the workers get to leave once the chief has ended
METRIC_CHIEF_LAG = "chief_exit_after_last_trial_s"
EXIT_TRIAL_KILLED = 3


class LaunchError(RuntimeError):
    """The chief died, or a worker kept dying: the search stopped (a relaunch continues it)."""


def free_port(host: str) -> int:
    """A port nothing listens on now (the chief binds it exclusively, so a race is an error)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def run_role(
    cell: RunConfig, tune: TuneConfig, space: Space, role: str
) -> tuple[int, SearchOutcome | None]:
    """This process as the chief (serve the oracle) or as a worker (run trials); its exit
    status, and the search's outcome when this chief owns the parent run.

    A chief started by the launcher finds the parent run in ``$MNV1_TUNE_PARENT_RUN_ID`` and
    leaves the summary to the launcher. A chief started by hand or by a scheduler (workers on
    other hosts) opens the parent itself before it serves, and summarises and ends it after.
    """
    from mnv1.tune.trial import TrialRunner
    from mnv1.tune.tuner import CellTuner, TrialKilled, make_oracle

    project = project_for(cell, tune, space)
    uri = resolve_uri(cell.tracking.uri)
    experiment_id = ensure_experiment(uri, project.experiment)
    runner = TrialRunner(cell, tune, project, uri, experiment_id)
    tuner = CellTuner(make_oracle(tune, space), project, runner)
    print(f"{project.cell}: {role} of search {project.key} (pid {os.getpid()})", flush=True)
    ref = None
    if role == CHIEF and not os.environ.get(ENV_PARENT):
        ref = open_search(cell, tune, space, reopen=True)
    try:
        tuner.search()
    except TrialKilled as exc:
        print(f"{role}: {exc}", file=sys.stderr, flush=True)
        return EXIT_TRIAL_KILLED, None
    except BaseException:
        if ref is not None:
            finish_search(ref, space, tune, runs.KILLED)
        raise
    if ref is not None:
        return 0, finish_search(ref, space, tune, runs.FINISHED)
    return 0, None


def _command(arguments: Sequence[str], cell: str) -> list[str]:
    kept = [a for a in arguments if not a.lstrip("+~").startswith("tune.cells=")]
    return [sys.executable, "-m", "mnv1.cli.tune", *kept, f"tune.cells=[{cell}]"]


def _stop(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def launch(
    cell: RunConfig, tune: TuneConfig, space: Space, arguments: Sequence[str]
) -> SearchOutcome:
    """Run one cell's search as a chief and ``tune.workers`` workers on this host."""
    project = project_for(cell, tune, space)
    lock = hold_search(project)
    try:
        ref = open_search(cell, tune, space, reopen=True)
        return _supervise(ref, tune, space, _command(arguments, project.cell))
    finally:
        lock.release()


def _supervise(ref: SearchRef, tune: TuneConfig, space: Space, command: list[str]) -> SearchOutcome:
    host = tune.host
    port = tune.port or free_port(host)
    base_env = dict(os.environ)
    base_env.update(
        {
            "KERASTUNER_ORACLE_IP": host,
            "KERASTUNER_ORACLE_PORT": str(port),
            ENV_PARENT: ref.parent_run_id,
        }
    )

    def start(tuner_id: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, env={**base_env, "KERASTUNER_TUNER_ID": tuner_id})

    print(
        f"{ref.project.cell}: chief on {host}:{port}, {tune.workers} worker(s); other hosts join "
        f"with KERASTUNER_ORACLE_IP={host} KERASTUNER_ORACLE_PORT={port} "
        "KERASTUNER_TUNER_ID=<unique id>",
        flush=True,
    )
    chief = start(CHIEF)
    workers = {f"worker{i}": start(f"worker{i}") for i in range(tune.workers)}
    restarts = dict.fromkeys(workers, 0)
    chief_ended: float | None = None
    try:
        while True:
            code = chief.poll()
            if code is not None:
                chief_ended = time.time()
                if code != 0:
                    raise LaunchError(
                        f"{ref.project.cell}: the chief exited with {code}; workers stopped. "
                        "Relaunch to continue the search"
                    )
                break
            for wid, proc in list(workers.items()):
                code = proc.poll()
                if code is None or code == 0:
                    continue  # running, or done: it was told the search is over
                restarts[wid] += 1
                if restarts[wid] > MAX_RESTARTS:
                    raise LaunchError(
                        f"{ref.project.cell}: worker {wid} died {restarts[wid]} times (last exit "
                        f"{code}); the search stopped. Relaunch to continue it"
                    )
                print(
                    f"{ref.project.cell}: worker {wid} exited with {code}: restarting it "
                    "under the same id, its trial comes back to it",
                    flush=True,
                )
                workers[wid] = start(wid)
            time.sleep(POLL_SECONDS)
        deadline = time.monotonic() + WORKER_EXIT_GRACE
        for proc in workers.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
    except BaseException:
        _stop([chief, *workers.values()])
        finish_search(ref, space, tune, runs.KILLED)
        raise
    _stop(list(workers.values()))
    outcome = finish_search(ref, space, tune, runs.FINISHED)
    ends = [r.end_time for r in outcome.rows if r.end_time is not None]
    if chief_ended is not None and ends:
        lag = chief_ended - max(ends) / 1000
        runs.log_metrics(ref.uri, ref.parent_run_id, {METRIC_CHIEF_LAG: lag})
        print(f"{ref.project.cell}: the chief ended {lag:.1f} s after the last trial", flush=True)
    return outcome
