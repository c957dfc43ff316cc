"""A stand-in for training in the tuning tests.

Each trial's process is the real worker (``python -m mnv1.training.worker``); under
``MNV1_TEST_TRIAL_STANDIN=1`` with ``tests/failure_injection`` first on ``PYTHONPATH``
(``Workspace.standin_env``), the test-only ``sitecustomize`` there serves this file as the
worker's ``mnv1.training.bootstrap`` and ``mnv1.training.run``, so the worker bootstraps nothing
and calls ``run_training`` below instead of TensorFlow. ``main`` runs the same training in the
calling process (``tune_support.in_process``, for fast tests).

It "trains" ``train.epochs`` epochs in well under a second: each epoch logs ``val_top1`` (the
known function ``objective`` of the trial's values, scaled by progress) and writes an epoch
checkpoint, so a rerun continues after the last epoch it finished, like the worker. Behaviours
for the tests, from the environment:

* ``MNV1_STANDIN_KILL_TRIAL=<id>``: in that trial, after its first epoch and only when it did not
  resume from a checkpoint, SIGKILL itself (``MNV1_STANDIN_KILL=self``, the default) or the
  tuner or worker that started it (its ``MNV1_ORCHESTRATOR_PID``: the parent of a cold worker,
  the zygote's owner for a warm one), and then itself (``MNV1_STANDIN_KILL=parent``);
* ``MNV1_STANDIN_FAIL_ABOVE=<key>=<x>``: raise when the trial's value of ``key`` exceeds ``x``;
  ``MNV1_STANDIN_FAIL=always``: raise in every trial;
* ``MNV1_STANDIN_HOLD=1``: hold each trial before its first epoch until a signal ends its process
  (a test stops the search while a trial's process runs, whatever the machine's speed);
* ``MNV1_STANDIN_MEET=<dir>:<n>``: before its first epoch, each trial waits until trials of ``n``
  different tuners have arrived (one file per tuner in ``dir``), so the search's workers run
  trials at the same time, however long each took to start. Both are conditions the tests wait
  on, not fixed pauses.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnv1.config import RunConfig, flatten, to_dict
from mnv1.run_key import checkpoint_dir
from mnv1.runlog import RunLog

CHECKPOINT = "standin.json"
# How long a trial waits for the other tuners' trials (MNV1_STANDIN_MEET) before it fails.
MEET_TIMEOUT_S = 300.0


def objective(learning_rate: float, dropout: float, label_smoothing: float) -> float:
    """The trial's val_top1: best at learning_rate 0.01, dropout 0.2, label_smoothing 0.05."""
    value = 0.9 - 0.2 * math.log10(learning_rate / 0.01) ** 2
    value -= (dropout - 0.2) ** 2 + (label_smoothing - 0.05) ** 2
    return max(0.0, min(1.0, value))


def objective_of(cfg: RunConfig) -> float:
    return objective(cfg.train.learning_rate, cfg.model.dropout, cfg.train.label_smoothing)


def _fail_check(cfg: RunConfig, environ: dict[str, str]) -> None:
    if environ.get("MNV1_STANDIN_FAIL") == "always":
        raise RuntimeError("stand-in: told to fail every trial")
    rule = environ.get("MNV1_STANDIN_FAIL_ABOVE")
    if rule:
        key, _, limit = rule.partition("=")
        value = flatten(to_dict(cfg))[key]
        if value > float(limit):
            raise RuntimeError(f"stand-in: {key}={value} is above {limit}")


def _wait_before_training(environ: dict[str, str]) -> None:
    """``MNV1_STANDIN_HOLD`` and ``MNV1_STANDIN_MEET`` (the module's docstring)."""
    if environ.get("MNV1_STANDIN_HOLD") == "1":
        while True:  # the signal's handler raises, or the signal ends the process
            signal.pause()
    meet = environ.get("MNV1_STANDIN_MEET")
    if meet:
        folder, _, count = meet.rpartition(":")
        (Path(folder) / environ.get("KERASTUNER_TUNER_ID", "tuner0")).touch()
        deadline = time.monotonic() + MEET_TIMEOUT_S
        while len(list(Path(folder).iterdir())) < int(count):
            if time.monotonic() > deadline:
                raise RuntimeError(f"stand-in: no {count} tuners met in {folder} in time")
            time.sleep(0.05)


def _train_epochs(cfg: RunConfig, run_log: RunLog, environ: dict[str, str]) -> float:
    """The stand-in training; its final val_top1. Raises where the tests make it fail."""
    run_log.log_params(flatten(to_dict(cfg)))
    _fail_check(cfg, environ)
    folder = checkpoint_dir(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    state = folder / CHECKPOINT
    done = json.loads(state.read_text())["epochs_done"] if state.exists() else 0
    resumed = done > 0
    run_log.set_tags({"mnv1.resumed_from_epoch": str(done)})
    final = objective_of(cfg)
    epochs = cfg.train.epochs
    _wait_before_training(environ)
    for epoch in range(done + 1, epochs + 1):
        run_log.log_metrics({"val_top1": final * epoch / epochs}, step=epoch)
        state.write_text(json.dumps({"epochs_done": epoch}))
        kill = environ.get("MNV1_STANDIN_KILL_TRIAL")
        if kill and kill == environ.get("MNV1_TUNE_TRIAL_ID") and epoch == 1 and not resumed:
            if environ.get("MNV1_STANDIN_KILL", "self") == "parent":
                os.kill(int(environ["MNV1_ORCHESTRATOR_PID"]), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
    run_log.log_metrics({"val_top1": final})
    return final


@dataclass(frozen=True)
class StandInResult:
    """What the worker prints of a finished run (``mnv1.training.run.RunResult``'s fields)."""

    val_top1: float
    val_top5: float
    train_images_per_sec: float = 0.0
    replicas: int = 1


def bootstrap(distribute: Any, train: Any) -> None:
    """The worker's ``mnv1.training.bootstrap.bootstrap``: nothing to configure, the stand-in
    never imports TensorFlow."""


def run_training(cfg: RunConfig, run_log: RunLog, **_: Any) -> StandInResult:
    """The worker's ``mnv1.training.run.run_training``: the stand-in training; an exception
    fails the run as any training's would (the worker logs its traceback and exits 1)."""
    final = _train_epochs(cfg, run_log, dict(os.environ))
    return StandInResult(final, final)


def train(cfg: RunConfig, spec: str, environ: dict[str, str]) -> int:
    """The stand-in training in this process, into the run log ``spec``; the exit status."""
    from mnv1.training.worker import make_run_log

    run_log = make_run_log(spec, cfg)
    try:
        _train_epochs(cfg, run_log, environ)
    except Exception:
        run_log.log_text("traceback.txt", traceback.format_exc())
        print(traceback.format_exc(), file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    config = Path(args[args.index("--config") + 1])
    spec = args[args.index("--run-log") + 1]
    from mnv1.training.worker import load_config

    return train(load_config(config), spec, dict(os.environ if environ is None else environ))
