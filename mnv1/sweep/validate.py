"""Checks a run configuration before anything is started: plain Python, no TensorFlow, no Hydra.

``mnv1-train`` runs these checks on every cell of the expanded grid before it creates an MLflow
run, an output directory or a TensorFlow context, and reports all problems at once. Each problem
names the key, the value received and what is allowed, so a typo in a 16-cell sweep costs
seconds, not the first fifteen cells.

Rules that need the built model or the devices (the exact replica count under ``auto`` on a GPU
host) are checked again where those exist; here a rule applies wherever the value is known from
the configuration alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mnv1.config import (
    ACTIVATIONS,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULES,
    STRATEGIES,
    VARIANTS,
    RunConfig,
    cell_name,
)
from mnv1.data.check import problems as data_problems

# The network's own limits (mnv1.model checks the same when it builds): five stride-2 layers
# need an input of at least 32 pixels, and α < 1/32 leaves the first layer (32·α channels)
# with none.
MIN_RESOLUTION = 32
MIN_ALPHA = 1 / 32
JIT_CHOICES: tuple[str, ...] = ("auto", "true", "false")


class ConfigError(ValueError):
    """A configuration that must not run; ``problems`` lists every reason."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Problem:
    key: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        return f"{self.key}={self.value!r}: {self.allowed}"


def _choice(key: str, value: Any, choices: Sequence[str]) -> list[Problem]:
    if value in choices:
        return []
    return [Problem(key, value, f"must be one of {', '.join(choices)}")]


def _at_least(key: str, value: Any, low: int, *, optional: bool = False) -> list[Problem]:
    if optional and value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        suffix = " or null" if optional else ""
        return [Problem(key, value, f"must be an integer >= {low}{suffix}")]
    return []


def _number_in(
    key: str, value: Any, low: float, high: float, *, low_open: bool, high_open: bool
) -> list[Problem]:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high
        )
    if ok:
        return []
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    high_text = "inf" if math.isinf(high) else f"{high:g}"
    return [Problem(key, value, f"must be a number in {lo}{low:g}, {high_text}{hi}")]


def _model(cfg: RunConfig) -> list[Problem]:
    m = cfg.model
    out: list[Problem] = []
    alpha_ok = isinstance(m.alpha, int | float) and not isinstance(m.alpha, bool)
    if not alpha_ok or not math.isfinite(m.alpha) or m.alpha <= 0:
        out.append(
            Problem("model.alpha", m.alpha, "must be a number > 0 (the paper: 1, 0.75, 0.5, 0.25)")
        )
    elif m.alpha < MIN_ALPHA:
        out.append(
            Problem(
                "model.alpha",
                m.alpha,
                f"must be >= 1/32 = {MIN_ALPHA}: smaller leaves the first layer no channel",
            )
        )
    if (
        isinstance(m.resolution, bool)
        or not isinstance(m.resolution, int)
        or m.resolution < MIN_RESOLUTION
    ):
        out.append(
            Problem(
                "model.resolution",
                m.resolution,
                f"must be an integer >= {MIN_RESOLUTION} pixels (the paper: 224, 192, 160, 128)",
            )
        )
    out += _choice("model.variant", m.variant, VARIANTS)
    out += _choice("model.activation", m.activation, ACTIVATIONS)
    out += _number_in("model.dropout", m.dropout, 0, 1, low_open=False, high_open=True)
    if m.bn_momentum is not None:
        out += _number_in("model.bn_momentum", m.bn_momentum, 0, 1, low_open=True, high_open=True)
    return out


def _train(cfg: RunConfig) -> list[Problem]:
    t = cfg.train
    out = _at_least("train.epochs", t.epochs, 1)
    out += _at_least("train.steps_per_epoch", t.steps_per_epoch, 1, optional=True)
    out += _at_least("train.batch_size", t.batch_size, 1)
    out += _at_least("train.lr_reference_batch", t.lr_reference_batch, 1)
    out += _at_least("train.bn_recalibration_batches", t.bn_recalibration_batches, 0)
    out += _at_least("train.checkpoint_every_steps", t.checkpoint_every_steps, 1, optional=True)
    out += _choice("train.optimizer", t.optimizer, OPTIMIZERS)
    out += _choice("train.schedule", t.schedule, SCHEDULES)
    out += _choice("train.precision", t.precision, PRECISIONS)
    out += _choice("train.jit_compile", str(t.jit_compile).lower(), JIT_CHOICES)
    inf = math.inf
    out += _number_in("train.learning_rate", t.learning_rate, 0, inf, low_open=True, high_open=True)
    out += _number_in("train.lr_decay_rate", t.lr_decay_rate, 0, 1, low_open=True, high_open=False)
    out += _number_in("train.momentum", t.momentum, 0, 1, low_open=False, high_open=True)
    out += _number_in("train.rmsprop_rho", t.rmsprop_rho, 0, 1, low_open=False, high_open=True)
    out += _number_in(
        "train.rmsprop_epsilon", t.rmsprop_epsilon, 0, inf, low_open=True, high_open=True
    )
    out += _number_in(
        "train.label_smoothing", t.label_smoothing, 0, 1, low_open=False, high_open=True
    )
    out += _number_in("train.weight_decay", t.weight_decay, 0, inf, low_open=False, high_open=True)
    out += _number_in(
        "train.depthwise_weight_decay",
        t.depthwise_weight_decay,
        0,
        inf,
        low_open=False,
        high_open=True,
    )
    warmup_ok = isinstance(t.epochs, int) and isinstance(t.warmup_epochs, int | float)
    if warmup_ok and not 0 <= t.warmup_epochs < max(t.epochs, 1):
        out.append(
            Problem(
                "train.warmup_epochs", t.warmup_epochs, f"must be in [0, train.epochs={t.epochs})"
            )
        )
    if not t.checkpoint_dir:
        out.append(Problem("train.checkpoint_dir", t.checkpoint_dir, "must be a directory path"))
    return out


def known_replicas(cfg: RunConfig) -> list[tuple[str, int]]:
    """The replica counts a run will have that the config alone determines, with their source.

    ``one_device`` has one; an explicit device list has one per device; ``cpu_replicas`` is the
    count on a CPU-only host and ``gpus_per_run`` the count on a GPU host (each cell sees that many
    GPUs). Under ``auto`` with neither set, the count depends on the host and is checked at start.
    """
    d = cfg.distribute
    if d.strategy == "one_device":
        return []
    if d.devices:
        return [("distribute.devices", len(d.devices))]
    found = []
    if isinstance(d.cpu_replicas, int) and d.cpu_replicas >= 1:
        found.append(("distribute.cpu_replicas", d.cpu_replicas))
    if isinstance(d.gpus_per_run, int) and d.gpus_per_run >= 1:
        found.append(("distribute.gpus_per_run", d.gpus_per_run))
    return found


def _distribute(cfg: RunConfig) -> list[Problem]:
    d = cfg.distribute
    out = _choice("distribute.strategy", d.strategy, STRATEGIES)
    out += _at_least("distribute.cpu_replicas", d.cpu_replicas, 1, optional=True)
    # 0 hides every GPU (mnv1.training.bootstrap): the run trains on the CPU.
    out += _at_least("distribute.gpus_per_run", d.gpus_per_run, 0, optional=True)
    out += _at_least("distribute.intra_op_threads", d.intra_op_threads, 1, optional=True)
    out += _at_least("distribute.inter_op_threads", d.inter_op_threads, 1, optional=True)
    if d.devices is not None and (
        not d.devices or not all(isinstance(x, str) and x for x in d.devices)
    ):
        out.append(
            Problem(
                "distribute.devices", d.devices, "must be null or a non-empty list of device names"
            )
        )
    batch = cfg.train.batch_size
    if isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1:
        for source, replicas in known_replicas(cfg):
            if batch % replicas:
                low = batch - batch % replicas
                hint = f"e.g. {low} or {low + replicas}" if low else f"e.g. {replicas}"
                out.append(
                    Problem(
                        "train.batch_size",
                        batch,
                        f"the global batch must divide evenly by the {replicas} replicas of "
                        f"{source}={replicas} ({hint})",
                    )
                )
    return out


def _tracking(cfg: RunConfig) -> list[Problem]:
    out: list[Problem] = []
    if not cfg.tracking.experiment or not str(cfg.tracking.experiment).strip():
        out.append(
            Problem("tracking.experiment", cfg.tracking.experiment, "must be a non-empty name")
        )
    if cfg.tracking.uri is not None and not str(cfg.tracking.uri).strip():
        out.append(
            Problem(
                "tracking.uri",
                cfg.tracking.uri,
                "must be a tracking URI (sqlite:///mlflow.db, http://host:5000) or null",
            )
        )
    if not cfg.study or not str(cfg.study).strip():
        out.append(Problem("study", cfg.study, "must be a non-empty name"))
    return out


def problems(cfg: RunConfig) -> list[str]:
    """Every reason ``cfg`` must not run, as ``key=value: what is allowed`` lines; [] when fine."""
    found = _model(cfg) + _train(cfg) + _distribute(cfg) + _tracking(cfg)
    # The data layer owns the data rules: which sources and datasets exist, whether a dataset is
    # prepared or may be, and the synthetic set's sizes (pure Python, no TensorFlow).
    return [str(p) for p in found] + data_problems(cfg.data)


def check(cfg: RunConfig) -> None:
    """Raise ConfigError listing every problem of ``cfg``."""
    found = problems(cfg)
    if found:
        raise ConfigError(found)


def cell_label(cfg: RunConfig) -> str:
    """The cell's name for messages; robust to the very values that failed validation."""
    return cell_name(cfg)


def grid_problems(cells: Iterable[RunConfig]) -> list[str]:
    """Problems of a whole grid, each reported once with the cells it occurs in.

    One bad value inside a 16-cell grid is one line naming its cell, not sixteen lines; a problem
    shared by every cell says so.
    """
    cell_list = list(cells)
    where: dict[str, list[str]] = {}
    for cfg in cell_list:
        for message in problems(cfg):
            where.setdefault(message, []).append(cell_label(cfg))
    lines = []
    for message, names in where.items():
        if len(cell_list) <= 1:
            lines.append(message)
        elif len(names) == len(cell_list):
            lines.append(f"{message} (all {len(cell_list)} cells)")
        else:
            shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            lines.append(f"{message} (in {len(names)} of {len(cell_list)} cells: {shown})")
    return lines
