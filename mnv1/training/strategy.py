"""Which ``tf.distribute`` strategy a run trains under.

``distribute.strategy``:

* ``auto``: ``MirroredStrategy`` over every visible GPU (one GPU included, so one code path
  serves a laptop GPU and an 8-GPU box); without a GPU, ``MirroredStrategy`` over the CPU's
  logical devices when ``distribute.cpu_replicas`` ≥ 2 split it (tests, demos), else
  ``OneDeviceStrategy`` on the CPU: a one-replica ``MirroredStrategy`` computes the same thing
  with extra cross-replica plumbing on every step.
* ``mirrored``: ``MirroredStrategy`` over ``distribute.devices`` when given, else every GPU,
  else every logical CPU device.
* ``one_device``: ``OneDeviceStrategy`` on ``distribute.devices[0]`` when given, else the first
  GPU, else the CPU.

One run never spans hosts: a ``TF_CONFIG`` naming several workers is refused, because
``MultiWorkerMirroredStrategy`` does not work with Keras 3 ``fit`` (keras-team/keras#20585).
Hosts scale out at the sweep level, one run per host or GPU slot, through the Hydra launchers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mnv1.config import ConfigError, DistributeConfig, batch_problem, check, device_id, rule


class MultiWorkerError(ValueError):
    """TF_CONFIG asks for one run across several hosts, which Keras 3 cannot train."""


@dataclass(frozen=True)
class StrategyPlan:
    """What ``make_strategy`` builds: ``mirrored`` or ``one_device``, over these devices."""

    kind: str
    devices: tuple[str, ...]


def normalise_device(name: str) -> str:
    """``gpu:0``, ``/GPU:0``, ``/job:…/device:GPU:0`` → ``/device:GPU:0``."""
    found = device_id(name)
    if found is None:
        raise ValueError(
            f"distribute.devices entry {name!r} is not a device name; use CPU:N or GPU:N "
            "(e.g. /gpu:0)"
        )
    return f"/device:{found[0]}:{found[1]}"


def check_tf_config(environ: Mapping[str, str] | None = None) -> None:
    """Refuse a ``TF_CONFIG`` whose cluster has more than one worker (chief included)."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not raw:
        return
    try:
        spec = json.loads(raw)
        cluster = spec.get("cluster", {}) if isinstance(spec, dict) else {}
        workers = sum(len(cluster.get(role, [])) for role in ("chief", "worker"))
    except (json.JSONDecodeError, TypeError, AttributeError) as err:
        raise ValueError(f"TF_CONFIG is not a valid cluster spec ({err}): {raw[:200]!r}") from err
    if workers > 1:
        raise MultiWorkerError(
            f"TF_CONFIG names {workers} workers, but one mnv1 run trains on one host: "
            "MultiWorkerMirroredStrategy does not work with Keras 3 fit "
            "(keras-team/keras#20585). Scale out across hosts at the sweep level (one run per "
            "host through a Hydra launcher: joblib, submitit or Ray) and unset TF_CONFIG for "
            "the training process."
        )


def plan_strategy(cfg: DistributeConfig, gpus: Sequence[str], cpus: Sequence[str]) -> StrategyPlan:
    """Choose the strategy from the config and the logical devices (pure: no TensorFlow).

    ``gpus`` and ``cpus`` are logical device names as TensorFlow lists them.
    """
    check(cfg, "distribute")  # the table's rules; what follows depends on this host's devices
    gpus = tuple(normalise_device(d) for d in gpus)
    cpus = tuple(normalise_device(d) for d in cpus)
    wanted = cfg.cpu_replicas or 1
    if wanted > 1 and len(cpus) != wanted:
        raise ValueError(
            f"distribute.cpu_replicas={cfg.cpu_replicas} but TensorFlow has {len(cpus)} logical "
            "CPU device(s): mnv1.training.bootstrap.bootstrap() must run before TensorFlow "
            "initialises "
            "(python -m mnv1.training.worker does this)"
        )
    if cfg.devices:
        devices = tuple(normalise_device(d) for d in cfg.devices)
        unknown = [d for d in devices if d not in gpus + cpus]
        if unknown:
            raise ValueError(
                f"distribute.devices names {', '.join(unknown)}, which this process does not "
                f"have; available: {', '.join(gpus + cpus)}"
            )
        if cfg.strategy == "auto":
            return StrategyPlan("mirrored" if len(devices) > 1 else "one_device", devices)
        return StrategyPlan(cfg.strategy, devices)
    if cfg.strategy == "one_device":
        return StrategyPlan("one_device", ((gpus or cpus)[0],))
    if gpus:
        return StrategyPlan("mirrored", gpus)
    if cfg.strategy == "mirrored" or wanted > 1:
        return StrategyPlan("mirrored", cpus)
    return StrategyPlan("one_device", (cpus[0],))


def make_strategy(cfg: DistributeConfig):  # -> tf.distribute.Strategy
    """Build the strategy for this process (initialises TensorFlow's devices)."""
    check_tf_config()
    import tensorflow as tf

    plan = plan_strategy(
        cfg,
        gpus=[d.name for d in tf.config.list_logical_devices("GPU")],
        cpus=[d.name for d in tf.config.list_logical_devices("CPU")],
    )
    if plan.kind == "one_device":
        return tf.distribute.OneDeviceStrategy(plan.devices[0])
    return tf.distribute.MirroredStrategy(list(plan.devices))


def check_global_batch(batch_size: int, replicas: int) -> int:
    """The per-replica batch; ``train.batch_size`` (global) must split evenly over the replicas."""
    problem = rule("train.batch_size").check(batch_size) or batch_problem(
        batch_size, replicas, "this run"
    )
    if problem is not None:
        raise ConfigError([problem])
    return batch_size // replicas
