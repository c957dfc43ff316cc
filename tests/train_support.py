"""Helpers for the training tests: a learnable in-memory dataset and a child-process runner.

Training tests with ``cpu_replicas`` need a process whose TensorFlow has not initialised yet
(``mnv1.training.bootstrap``), and MirroredStrategy runs of different shapes cannot share a
process, so
each run is a child: ``python tests/train_support.py --config run.json --run-log jsonl:PATH
[--train N --val M] [--nan]``. It calls ``mnv1.training.worker.run`` (bootstrap, then
``run_training``)
with the in-memory dataset below instead of the data layer, and exits with the worker's status.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
NUM_CLASSES = 4


def learnable_arrays(
    count: int, resolution: int, seed: int, num_classes: int = NUM_CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class is the quadrant holding a bright square, under Gaussian noise.

    Easy for a convolutional network, not trivially separable by mean intensity (every image
    has one bright square), and train and validation draws come from one distribution, so a
    model that learned it validates as well as it trains.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, size=count).astype(np.int32)
    images = rng.normal(0.0, 0.25, size=(count, resolution, resolution, 3)).astype(np.float32)
    half = resolution // 2
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 2)
        images[i, row * half : (row + 1) * half, col * half : (col + 1) * half, :] += 0.8
    return np.clip(images, -1.0, 1.0), labels


def make_datasets(
    train_count: int, val_count: int, resolution: int, global_batch: int, seed: int = 0
) -> Any:
    """``mnv1.data.types.Datasets`` held in memory (train drops the remainder, val keeps it)."""
    import tensorflow as tf

    from mnv1.data.types import Datasets, Fingerprint

    train_x, train_y = learnable_arrays(train_count, resolution, seed)
    val_x, val_y = learnable_arrays(val_count, resolution, seed + 1)
    train = (
        tf.data.Dataset.from_tensor_slices((train_x, train_y))
        .shuffle(train_count, seed=seed)
        .batch(global_batch, drop_remainder=True)
    )
    val = tf.data.Dataset.from_tensor_slices((val_x, val_y)).batch(global_batch)
    return Datasets(
        train=train,
        val=val,
        num_classes=NUM_CLASSES,
        train_examples=train_count,
        val_examples=val_count,
        fingerprint=Fingerprint(
            name="quadrants",
            version="1",
            splits={"train": train_count, "validation": val_count},
            num_classes=NUM_CLASSES,
        ),
    )


def tiny_config(tmp: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    """A RunConfig dict for a seconds-long CPU run; ``sections`` override per section."""
    from mnv1.config import RunConfig, to_dict

    cfg = to_dict(RunConfig())
    cfg["model"].update(alpha=0.25, resolution=32)
    cfg["train"].update(
        epochs=3,
        batch_size=16,
        learning_rate=0.05,
        lr_reference_batch=16,
        bn_recalibration_batches=4,
        checkpoint_dir=str(tmp / "checkpoints"),
    )
    cfg["distribute"].update(cpu_replicas=2)
    cfg["tracking"].update(log_model=False)
    for section, values in sections.items():
        cfg[section].update(values)
    return cfg


def run_child(
    cfg: dict[str, Any],
    tmp: Path,
    train: int = 64,
    val: int = 32,
    nan: bool = False,
    name: str = "run",
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run one training in a child process; returns the completed process and its jsonl."""
    config = tmp / f"{name}.json"
    config.write_text(json.dumps(cfg))
    jsonl = tmp / f"{name}.jsonl"
    proc = subprocess.run(
        child_command(config, jsonl, train, val, nan),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=child_env(env),
        cwd=tmp,
    )
    return proc, jsonl


def child_command(config: Path, jsonl: Path, train: int, val: int, nan: bool = False) -> list[str]:
    command = [sys.executable, str(Path(__file__).resolve()), "--config", str(config)]
    command += ["--run-log", f"jsonl:{jsonl}", "--train", str(train), "--val", str(val)]
    return command + (["--nan"] if nan else [])


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.pop("TF_CONFIG", None)
    env.update(extra or {})
    return env


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--run-log", required=True)
    parser.add_argument("--train", type=int, default=64)
    parser.add_argument("--val", type=int, default=32)
    parser.add_argument("--nan", action="store_true", help="poison the training images with NaN")
    args = parser.parse_args()

    from mnv1.training import worker

    cfg = worker.load_config(args.config)
    run_log = worker.make_run_log(args.run_log, cfg)

    def datasets() -> Any:
        data = make_datasets(
            args.train, args.val, cfg.model.resolution, cfg.train.batch_size, cfg.train.seed
        )
        if args.nan:
            data.train = data.train.map(lambda x, y: (x * float("nan"), y))
        return data

    return worker.run(cfg, run_log, datasets_factory=datasets)


if __name__ == "__main__":
    sys.exit(main())
