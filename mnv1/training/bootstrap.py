"""Process set-up that TensorFlow only accepts before it initialises its devices.

TensorFlow fixes its logical devices, thread pools and GPU memory mode the first time anything
touches a device (creating a tensor, listing logical devices, building a strategy). After that
the settings are frozen for the life of the process, so ``bootstrap`` runs first, once, in the
process that trains (``python -m mnv1.training.worker`` calls it before anything else). Calling it
later
raises ``BootstrapError`` instead of silently training on the wrong devices.

The per-run settings that TensorFlow accepts at any time (seeds, op determinism, the Keras
precision policy) are applied here too, and again by ``mnv1.training.run.run_training`` through
``apply_run_settings``, so an in-process caller that never bootstraps (a benchmark) still gets them.
"""

from __future__ import annotations

import tensorflow as tf

from mnv1.config import DistributeConfig, TrainConfig, check
from mnv1.training.recipe import apply_precision


class BootstrapError(RuntimeError):
    """Bootstrap was called after TensorFlow had initialised its devices."""


def tf_initialised() -> bool:
    """Whether TensorFlow's eager context (and so its device list) already exists.

    TensorFlow has no public query for this; the context's handle is created exactly when the
    devices are initialised, and its own setters test the same attribute.
    """
    from tensorflow.python.eager import context  # no public equivalent

    return getattr(context.context(), "_context_handle", None) is not None


def bootstrap(distribute: DistributeConfig, train: TrainConfig) -> None:
    """Configure devices, thread pools, GPU memory, determinism and precision for this process.

    * ``distribute.cpu_replicas = N`` (N ≥ 2) splits the CPU into N logical devices, so a
      ``MirroredStrategy`` has N replicas without a GPU.
    * ``distribute.gpus_per_run = N`` keeps the first N visible GPUs (a launcher chooses which
      ones through ``CUDA_VISIBLE_DEVICES``); 0 hides every GPU.
    * every visible GPU gets memory growth, so several runs can share a card.
    * ``distribute.intra_op_threads`` / ``inter_op_threads`` size TensorFlow's thread pools.
    * ``train.seed`` seeds Python, NumPy, TensorFlow and Keras; ``train.deterministic`` turns on
      op determinism; ``train.precision`` sets the Keras dtype policy.
    """
    _check(distribute)
    if tf_initialised():
        raise BootstrapError(
            "mnv1.training.bootstrap.bootstrap() must run before TensorFlow initialises its "
            "devices, "
            "but they are already initialised (something created a tensor, listed logical "
            "devices or built a strategy first). Call bootstrap() first in the training "
            "process, as `python -m mnv1.training.worker` does."
        )
    gpus = tf.config.list_physical_devices("GPU")  # physical devices: does not initialise
    if distribute.gpus_per_run is not None:
        if distribute.gpus_per_run > len(gpus):
            raise ValueError(
                f"distribute.gpus_per_run={distribute.gpus_per_run} but only {len(gpus)} "
                "GPU(s) are visible to this process"
            )
        gpus = gpus[: distribute.gpus_per_run]
        tf.config.set_visible_devices(gpus, "GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    if distribute.cpu_replicas is not None and distribute.cpu_replicas > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * distribute.cpu_replicas
        )
    if distribute.intra_op_threads is not None:
        tf.config.threading.set_intra_op_parallelism_threads(distribute.intra_op_threads)
    if distribute.inter_op_threads is not None:
        tf.config.threading.set_inter_op_parallelism_threads(distribute.inter_op_threads)
    apply_run_settings(train)


def apply_run_settings(train: TrainConfig) -> None:
    """Seeds, op determinism and precision: the settings TensorFlow accepts at any time."""
    import keras

    keras.utils.set_random_seed(train.seed)
    if train.deterministic:
        # Process-global and without a public off switch: one more reason each run trains in
        # its own process.
        tf.config.experimental.enable_op_determinism()
    apply_precision(train)


def _check(distribute: DistributeConfig) -> None:
    """The ``distribute.*`` rules of the table (``mnv1.config.RULES``), before any device is set."""
    check(distribute, "distribute")
