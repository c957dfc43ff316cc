"""Run identity: a key hashed from the resolved config minus the keys that do not change results.

Below training, the sweep and the tuner alike: a run's checkpoint directory, its MLflow tags and
a relaunch's lookup all use it. ``short_key`` is the one hash every other key of the project uses.

A relaunched sweep finds a cell's earlier run by this key (skip it if FINISHED, resume it if it was
interrupted), and the cell's checkpoint directory is named by it, so the key must be stable across
processes, machines and Python versions: sorted JSON of plain values, hashed with SHA-256.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from mnv1.config import RunConfig, flatten, to_dict

# Where things are written and how they are tracked do not change what a run computes, so two
# runs differing only in these are the same run. ``tuned`` is the path of a tuned file: the values
# it applies are in the config (and so in the key), the path itself is not.
VOLATILE_PREFIXES: tuple[str, ...] = (
    "tracking.",
    "tuned",
    "train.checkpoint_dir",
    "train.checkpoint_every_steps",
    "train.keep_checkpoints",
    "data.data_dir",
    "data.manual_dir",
    # A wall-time target only chooses train.steps_per_epoch, which is in the key: a budget
    # pinned by hand to the same steps computes the same run.
    "train.target_minutes",
    # How many seeds the sweep runs per cell; each run's own train.seed is in its key.
    "seeds",
    # How the run's process is started (forked warm or a fresh interpreter), not what it trains.
    "distribute.warm_workers",
)

KEY_LENGTH = 16  # hex digits: 64 bits, collision-free for any sweep a store will hold


def identity_params(cfg: RunConfig) -> dict[str, Any]:
    """The flattened config entries that define the run."""
    flat = flatten(to_dict(cfg))
    return {k: v for k, v in flat.items() if not k.startswith(VOLATILE_PREFIXES)}


def short_key(payload: Any, length: int = KEY_LENGTH, *, sort_keys: bool = True) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``payload`` as JSON.

    Every key of the project is made here (a run, a sweep, a search, a probe's machine and
    shapes, a dataset input), so each is stable across processes, machines and Python versions
    in the same way. ``sort_keys=False`` keeps the insertion order for a key that was first
    published that way (a dataset input's digest in MLflow).
    """
    text = json.dumps(payload, sort_keys=sort_keys, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def run_key(cfg: RunConfig) -> str:
    return short_key(identity_params(cfg))


def checkpoint_dir(cfg: RunConfig) -> Path:
    """Where this run keeps its checkpoints: one directory per run key."""
    return Path(cfg.train.checkpoint_dir).expanduser() / run_key(cfg)
