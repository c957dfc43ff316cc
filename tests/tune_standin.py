"""A stand-in for the training worker in the tuning tests.

``python -m tests.tune_standin --config run.json --run-log mlflow:RUN_ID``: the worker's own
command line, run by the tuner as each trial's process (``tune.trial_module=tests.tune_standin``).
It "trains" ``train.epochs`` epochs in well under a second: each epoch logs ``val_top1`` (the
known function ``objective`` of the trial's values, scaled by progress) and writes an epoch
checkpoint, so a rerun continues after the last epoch it finished, like the worker. Behaviours
for the tests, from the environment:

* ``MNV1_STANDIN_KILL_TRIAL=<id>``: in that trial, after its first epoch and only when it did not
  resume from a checkpoint, SIGKILL itself (``MNV1_STANDIN_KILL=self``, the default) or its
  parent, the tuner or worker that started it, and then itself (``MNV1_STANDIN_KILL=parent``);
* ``MNV1_STANDIN_FAIL_ABOVE=<key>=<x>``: raise when the trial's value of ``key`` exceeds ``x``;
  ``MNV1_STANDIN_FAIL=always``: raise in every trial;
* ``MNV1_STANDIN_EPOCH_SECONDS=<s>``: sleep that long per epoch (trials then overlap in time).
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
from pathlib import Path

from mnv1.config import RunConfig, flatten, to_dict
from mnv1.sweep.run_key import checkpoint_dir
from mnv1.training.worker import load_config, make_run_log

CHECKPOINT = "standin.json"


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


def train(cfg: RunConfig, spec: str, environ: dict[str, str]) -> int:
    run_log = make_run_log(spec, cfg)
    try:
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
        pause = float(environ.get("MNV1_STANDIN_EPOCH_SECONDS", "0"))
        for epoch in range(done + 1, epochs + 1):
            time.sleep(pause)
            run_log.log_metrics({"val_top1": final * epoch / epochs}, step=epoch)
            state.write_text(json.dumps({"epochs_done": epoch}))
            kill = environ.get("MNV1_STANDIN_KILL_TRIAL")
            if kill and kill == environ.get("MNV1_TUNE_TRIAL_ID") and epoch == 1 and not resumed:
                if environ.get("MNV1_STANDIN_KILL", "self") == "parent":
                    os.kill(os.getppid(), signal.SIGKILL)
                os.kill(os.getpid(), signal.SIGKILL)
        run_log.log_metrics({"val_top1": final})
    except Exception:
        run_log.log_text("traceback.txt", traceback.format_exc())
        print(traceback.format_exc(), file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    config = Path(args[args.index("--config") + 1])
    spec = args[args.index("--run-log") + 1]
    return train(load_config(config), spec, dict(os.environ if environ is None else environ))


if __name__ == "__main__":
    sys.exit(main())
