"""One cell of a sweep: decide what to do with its run key, then train in a child process.

The Hydra job calls ``run_cell``. It looks the run key up in MLflow:

* a FINISHED run: skip the cell and say so (``tracking.rerun=true`` trains it again, fresh);
* a RUNNING run whose owner process is alive: another launch is training it, skip;
* a RUNNING run whose owner on this host is gone (the launch was killed outright): mark it
  KILLED, then resume it;
* a FAILED or KILLED run: resume it in the same MLflow run, from its checkpoint where one exists.

One run key, one checkpoint directory and one MLflow run stay paired, so a resumed run continues
its own epochs and never duplicates one. Training runs in ``python -m mnv1.training.worker``, a
process of its own per cell (several MirroredStrategy trainings of different shapes cannot share a
process, tensorflow/tensorflow#61314): forked from this process's warm zygote, which imported
TensorFlow, Keras and MLflow once (``mnv1.sweep.warm``), or a fresh interpreter with
``distribute.warm_workers=false``. The child's exit becomes the run's status: exit 0 FINISHED, an
exception FAILED (the worker attaches ``traceback.txt``), death by a signal KILLED.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from mnv1.config import RunConfig, cell_name, to_dict
from mnv1.run_key import checkpoint_dir, identity_params, run_key
from mnv1.sweep.gpu_slots import gpu_slot
from mnv1.sweep.scheduler import TAG_SCHEDULER_JOB, current_job
from mnv1.sweep.validate import check
from mnv1.sweep.warm import start_worker
from mnv1.timing import METRIC_CELL, METRIC_WORKER_WALL
from mnv1.tracking import runs, schema
from mnv1.tracking.claim import RESUME, SKIP, claim_run
from mnv1.tracking.store import ensure_experiment, resolve_uri
from mnv1.tuned import tuned_entry
from mnv1.worker_contract import EXIT_FINISHED, spawn_env

log = logging.getLogger(__name__)

TRACEBACK_ARTIFACT = schema.TRACEBACK_ARTIFACT
STDERR_TAIL_ARTIFACT = "worker_stderr_tail.txt"
CONFIG_ARTIFACT = "config.json"
TAG_CUDA_VISIBLE = "mnv1.cuda_visible_devices"
STDERR_TAIL_LINES = 200
# How long a worker gets to exit after SIGTERM before it is killed.
TERMINATE_GRACE_SECONDS = 20.0


@dataclass(frozen=True)
class SweepRef:
    """The sweep a cell belongs to, as the sweep start handed it down to every job."""

    parent_run_id: str
    sweep_key: str
    experiment_id: str
    uri: str
    seeded: bool = False
    """Some cell of the grid runs with several seeds: child runs are then named per seed."""

    ENV_PARENT = "MNV1_SWEEP_PARENT_RUN_ID"
    ENV_KEY = "MNV1_SWEEP_KEY"
    ENV_EXPERIMENT = "MNV1_SWEEP_EXPERIMENT_ID"
    ENV_URI = "MNV1_SWEEP_TRACKING_URI"
    ENV_SEEDED = "MNV1_SWEEP_SEEDED"
    # Read by each job's orchestrator, never by the worker's imports: they do not key the
    # warm-worker zygote, so the zygote the plan's probe started (before the sweep had its
    # parent run) serves the cells.
    ENV_NAMES = (ENV_PARENT, ENV_KEY, ENV_EXPERIMENT, ENV_URI, ENV_SEEDED)

    def env(self) -> dict[str, str]:
        return {
            self.ENV_PARENT: self.parent_run_id,
            self.ENV_KEY: self.sweep_key,
            self.ENV_EXPERIMENT: self.experiment_id,
            self.ENV_URI: self.uri,
            self.ENV_SEEDED: "1" if self.seeded else "0",
        }

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SweepRef | None:
        env = os.environ if environ is None else environ
        if not env.get(cls.ENV_PARENT):
            return None
        return cls(
            env[cls.ENV_PARENT],
            env[cls.ENV_KEY],
            env[cls.ENV_EXPERIMENT],
            env[cls.ENV_URI],
            env.get(cls.ENV_SEEDED) == "1",
        )


@dataclass(frozen=True)
class CellOutcome:
    name: str
    run_key: str
    run_id: str | None
    status: str  # the run's status after this job: FINISHED, FAILED, KILLED or RUNNING
    action: str  # "trained", "resumed", "skipped"
    message: str = ""


def _say(message: str) -> None:
    # Both the job log (Hydra's per-job log file) and the terminal show what a cell decided.
    log.info(message)


def exit_status(returncode: int) -> tuple[str, str]:
    """The run status and a short description for a worker's exit code."""
    if returncode == EXIT_FINISHED:
        return runs.FINISHED, "exit 0"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return runs.KILLED, f"signal {-returncode} ({name})"
    return runs.FAILED, f"exit {returncode}"


def _pump(stream: IO[str], tail: collections.deque[str]) -> None:
    """Copy the worker's stderr through to ours, keeping the last lines for the run."""
    for line in stream:
        sys.stderr.write(line)
        sys.stderr.flush()
        tail.append(line)


def _run_worker(
    config_path: Path,
    run_id: str,
    uri: str,
    cuda_visible: str | None,
    *,
    extra_env: dict[str, str] | None = None,
    warm: bool = True,
) -> tuple[int, str]:
    """Train in ``python -m mnv1.training.worker`` (forked warm, or cold); return its exit code
    and the tail of its stderr."""
    # The worker measures its own start-up against the spawn time (time_process_start_s), and
    # arms its own death with this process from the pid (mnv1.worker_contract).
    env = spawn_env(os.environ)
    env.update(extra_env or {})
    env["MLFLOW_TRACKING_URI"] = uri
    if cuda_visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible
    args = ["--config", str(config_path), "--run-log", f"mlflow:{run_id}"]
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    # The launch's extras are per worker (a trial's id), the sweep's identity per sweep: they
    # must not key the zygote.
    per_spawn = (*(extra_env or ()), *SweepRef.ENV_NAMES)
    proc = start_worker(args, env, warm=warm, per_spawn=per_spawn)
    assert proc.stderr is not None
    pump = threading.Thread(target=_pump, args=(proc.stderr, tail), daemon=True)
    pump.start()
    try:
        code = proc.wait()
    except BaseException:
        # Interrupted (Ctrl-C, SIGTERM from a scheduler): stop the worker before giving up.
        proc.terminate()
        try:
            proc.wait(timeout=TERMINATE_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    pump.join(timeout=5)
    return code, "".join(tail)


def child_run_name(cfg: RunConfig, seeded: bool) -> str:
    """The cell's name (``mnv1_a0.5_r160``), plus ``_s<seed>`` when the sweep runs several seeds
    of a cell, so its runs read apart in the MLflow UI (the ``mnv1.cell`` tag groups them)."""
    name = cell_name(cfg)
    return f"{name}_s{cfg.train.seed}" if seeded else name


def _child_tags(cfg: RunConfig, key: str, sweep: SweepRef | None) -> dict[str, str]:
    tags = {
        schema.TAG_KIND: schema.KIND_CELL,
        schema.TAG_CELL: cell_name(cfg),
        schema.TAG_SEED: str(cfg.train.seed),
        schema.TAG_RUN_KEY: key,
        schema.TAG_STUDY: cfg.study,
        schema.TAG_VARIANT: cfg.model.variant,
        **runs.Owner.current().tags(),
    }
    if sweep is not None:
        tags[schema.TAG_SWEEP] = sweep.sweep_key
    job = current_job()
    if job is not None:
        tags[TAG_SCHEDULER_JOB] = job
    entry = tuned_entry(cfg)
    if entry is not None:
        # The report marks the cells whose recipe came from a search.
        tags[schema.TAG_TUNED] = "true"
        tags[schema.TAG_TUNED_FROM] = entry.run_id
    commit = _git_commit()
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def _git_commit() -> str | None:
    """The commit of the mnv1 checkout, when it runs from one."""
    root = Path(__file__).resolve().parents[2]  # mnv1/sweep/ → the checkout
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


@dataclass(frozen=True)
class _Decision:
    run_id: str | None  # None: nothing to train
    action: str
    status: str  # of the existing run when skipped, else RUNNING
    message: str


def _owner_of(run: runs.RunInfo, job: str | None) -> tuple[str, bool | None]:
    """Who owns a RUNNING cell run, in words, and whether that process is alive (None: cannot
    be told from here, another host)."""
    owner = f"pid {run.tags.get(schema.TAG_PID)} on {run.tags.get(schema.TAG_HOST)}"
    # A requeued SLURM job keeps its id: a run RUNNING under this very job was owned by the
    # job's previous incarnation, which is gone whatever host it ran on.
    if job is not None and run.tags.get(TAG_SCHEDULER_JOB) == job:
        return f"{owner} (an earlier run of {job})", False
    return owner, runs.owner_alive(run.tags)


def _open_run(
    cfg: RunConfig, key: str, name: str, uri: str, experiment_id: str, sweep: SweepRef | None
) -> _Decision:
    """Find the cell's run and reopen it, or create it, or decide to skip the cell."""
    if cfg.tracking.rerun:
        # A fresh run must not resume the old run's checkpoint: one key, one checkpoint, one run.
        shutil.rmtree(checkpoint_dir(cfg), ignore_errors=True)
        found = None
    else:
        found = runs.find_cell(uri, experiment_id, key)
    job = current_job()

    def owner_gone(run: runs.RunInfo) -> str | None:
        owner, alive = _owner_of(run, job)
        return None if alive is not False else f"owner {owner} was gone when {name} was relaunched"

    claim = claim_run(
        uri,
        found,
        owner_gone,
        archive=(TRACEBACK_ARTIFACT, STDERR_TAIL_ARTIFACT),
        tags={TAG_SCHEDULER_JOB: job} if job is not None else None,
    )
    existing = claim.run
    if claim.action == SKIP and existing is not None:
        if existing.status == runs.FINISHED:
            why = f"with key {key} is already FINISHED (tracking.rerun=true trains it again)"
        else:
            owner, alive = _owner_of(existing, job)
            why = f"is RUNNING in {owner}" + (
                "" if alive else " (another host: if that process is gone, mark the run KILLED)"
            )
        message = f"{name}: skipped, run {existing.run_id} {why}"
        return _Decision(None, "skipped", existing.status, message)
    if claim.action == RESUME and existing is not None:
        if claim.killed is not None:
            owner, _ = _owner_of(existing, job)
            _say(f"{name}: run {existing.run_id} was left RUNNING by {owner}, gone: marked KILLED")
        return _Decision(
            existing.run_id,
            "resumed",
            runs.RUNNING,
            f"{name}: resuming run {existing.run_id} (was {existing.status}) from its checkpoint",
        )

    tags = _child_tags(cfg, key, sweep)
    run_id = runs.create(
        uri, experiment_id, name, tags, parent_run_id=sweep.parent_run_id if sweep else None
    )
    # Params are what defines the run (identical on every attempt by construction); where it was
    # written and how it was tracked go into the config artifact of each attempt instead.
    runs.log_params(uri, run_id, identity_params(cfg))
    runs.log_metrics(
        uri,
        run_id,
        {schema.METRIC_ALPHA: cfg.model.alpha, schema.METRIC_RESOLUTION: cfg.model.resolution},
    )
    return _Decision(run_id, "trained", runs.RUNNING, f"{name}: new run {run_id} (key {key})")


def run_cell(cfg: RunConfig, sweep: SweepRef | None, workdir: Path) -> CellOutcome:
    """Run one cell to a final MLflow status; never raises for a failure inside training."""
    started = time.perf_counter()
    check(cfg)
    uri = sweep.uri if sweep else resolve_uri(cfg.tracking.uri)
    experiment_id = (
        sweep.experiment_id if sweep else ensure_experiment(uri, cfg.tracking.experiment)
    )
    key = run_key(cfg)
    name = child_run_name(cfg, sweep is not None and sweep.seeded)

    decision = _open_run(cfg, key, name, uri, experiment_id, sweep)
    run_id, action = decision.run_id, decision.action
    if run_id is None:
        _say(decision.message)
        return CellOutcome(name, key, None, decision.status, action, decision.message)
    try:
        _say(decision.message)
        attempt = run_attempt(cfg, uri, run_id, workdir, started=started)
    except KeyboardInterrupt:
        # An interrupt before run_attempt took the open run over would leave it RUNNING.
        if runs.get(uri, run_id).status == runs.RUNNING:
            runs.finish(uri, run_id, runs.KILLED)
        raise
    if attempt.orchestration_error is not None:
        return CellOutcome(
            name,
            key,
            run_id,
            attempt.status,
            action,
            f"{name}: {attempt.status} in orchestration: {attempt.orchestration_error}",
        )
    done = f"{name}: {attempt.status} ({attempt.how}), run {run_id}"
    _say(done)
    return CellOutcome(name, key, run_id, attempt.status, action, done)


@dataclass(frozen=True)
class Attempt:
    """How one attempt at a run ended: the run's final status and how its process exited."""

    status: str
    how: str
    stderr_tail: str = ""
    orchestration_error: str | None = None
    """Set when the attempt broke before or around the worker (the run then ended FAILED)."""


# How an attempt trains: (run.json, run id, tracking URI, CUDA_VISIBLE_DEVICES or None) to the
# exit code of the training and the tail of what it wrote to stderr.
Launch = Callable[[Path, str, str, str | None], tuple[int, str]]


def worker_launch(extra_env: dict[str, str] | None = None, *, warm: bool = True) -> Launch:
    """Train in ``python -m mnv1.training.worker --config run.json --run-log mlflow:RUN_ID``,
    with ``extra_env`` added to the worker's environment (variables the worker reads after its
    start, such as a trial's id), forked from the warm zygote when ``warm``
    (``distribute.warm_workers``)."""
    return functools.partial(_run_worker, extra_env=extra_env, warm=warm)


def run_attempt(
    cfg: RunConfig,
    uri: str,
    run_id: str,
    workdir: Path,
    *,
    started: float | None = None,
    launch: Launch | None = None,
) -> Attempt:
    """Train ``cfg`` into the open run ``run_id`` and end the run with the training's status
    (exit 0 FINISHED, an exception FAILED, a signal KILLED).

    Shared by the sweep's cells and the tuner's trials; ``launch`` (default: the worker process,
    ``worker_launch``) is what trains. Never raises for a failure inside training; an
    interruption of this process ends the run KILLED and propagates.
    """
    started = time.perf_counter() if started is None else started
    launch = launch or worker_launch(warm=cfg.distribute.warm_workers)
    try:
        resolved = replace(cfg, tracking=replace(cfg.tracking, uri=uri))
        workdir.mkdir(parents=True, exist_ok=True)
        config_path = workdir / "run.json"
        config_path.write_text(json.dumps(to_dict(resolved), indent=2, sort_keys=True) + "\n")
        runs.log_text(uri, run_id, CONFIG_ARTIFACT, config_path.read_text())
        with gpu_slot(cfg.distribute.gpus_per_run) as cuda_visible:
            if cuda_visible is not None:
                runs.set_tags(uri, run_id, {TAG_CUDA_VISIBLE: cuda_visible})
            spawned = time.perf_counter()
            code, stderr_tail = launch(config_path, run_id, uri, cuda_visible)
            worker_wall = time.perf_counter() - spawned
    except BaseException as exc:
        # The orchestration itself broke (or was interrupted): the run must not stay RUNNING.
        status = runs.FAILED if isinstance(exc, Exception) else runs.KILLED
        runs.log_text(uri, run_id, TRACEBACK_ARTIFACT, traceback.format_exc())
        runs.finish(uri, run_id, status)
        if isinstance(exc, Exception):
            return Attempt(status, "orchestration", orchestration_error=str(exc))
        raise

    status, how = exit_status(code)
    # Where the cell's time went, as the orchestrator saw it (the worker logs its own phases).
    runs.log_metrics(
        uri,
        run_id,
        {METRIC_CELL: time.perf_counter() - started, METRIC_WORKER_WALL: worker_wall},
    )
    runs.set_tags(uri, run_id, {runs.TAG_EXIT: how})
    if status != runs.FINISHED:
        # The worker attaches traceback.txt for an exception; a death by signal or a crash in
        # native code leaves only what it printed last, so keep that too.
        runs.log_text(uri, run_id, STDERR_TAIL_ARTIFACT, stderr_tail or "(no output)\n")
    runs.finish(uri, run_id, status)
    return Attempt(status, how, stderr_tail)
