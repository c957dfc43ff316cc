"""Training checkpoints that survive a SIGKILL at any instant.

Each checkpoint is a directory ``epoch{E:04d}-step{S:06d}`` holding the model's weights together
with the optimizer state (Keras's ``save_weights`` walks the compiled optimizer too, iteration
counter included, so the learning-rate schedule resumes where it stopped) and ``state.json``.
It is written under a temporary name and renamed into place, then ``latest.json`` is replaced
atomically to point at it; a process killed mid-write leaves the previous checkpoint in charge.
The two newest checkpoints are kept, and they stay after the run finishes: relaunching a
finished run trains nothing and re-reports its final evaluation from the last checkpoint. To
train the same configuration afresh, delete its directory (``mnv1.sweep.run_key.checkpoint_dir``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

WEIGHTS_FILE = "state.weights.h5"
STATE_FILE = "state.json"
LATEST_FILE = "latest.json"


@dataclass(frozen=True)
class CheckpointState:
    """Where training stood: ``epochs_done`` epochs plus ``step_in_epoch`` steps of the next."""

    epochs_done: int
    step_in_epoch: int = 0
    steps_per_epoch: int = 0

    @property
    def name(self) -> str:
        return f"epoch{self.epochs_done:04d}-step{self.step_in_epoch:06d}"


class CheckpointStore:
    def __init__(self, directory: Path, keep: int = 2) -> None:
        self.directory = Path(directory)
        self.keep = keep

    def latest(self) -> CheckpointState | None:
        pointer = self.directory / LATEST_FILE
        if not pointer.exists():
            return None
        data = json.loads(pointer.read_text())
        return CheckpointState(**data)

    def save(self, model: Any, state: CheckpointState) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / state.name
        tmp = self.directory / f".tmp-{state.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        model.save_weights(str(tmp / WEIGHTS_FILE))
        (tmp / STATE_FILE).write_text(json.dumps(asdict(state)))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _write_atomically(self.directory / LATEST_FILE, json.dumps(asdict(state)))
        self._prune(keep=final)
        return final

    def restore(self, model: Any) -> CheckpointState | None:
        """Load the latest checkpoint into a compiled, built model; None when there is none."""
        state = self.latest()
        if state is None:
            return None
        weights = self.directory / state.name / WEIGHTS_FILE
        if not weights.exists():
            raise FileNotFoundError(
                f"{self.directory / LATEST_FILE} points at {state.name}, but {weights} is missing; "
                "delete the checkpoint directory to start the run afresh"
            )
        if model.optimizer is not None and not model.optimizer.built:
            # The optimizer creates its slots lazily; they must exist to receive saved values.
            model.optimizer.build(model.trainable_variables)
        model.load_weights(str(weights))
        return state

    def _prune(self, keep: Path) -> None:
        done = sorted(
            p for p in self.directory.iterdir() if p.is_dir() and p.name.startswith("epoch")
        )
        for old in done[: -self.keep]:
            if old != keep:
                shutil.rmtree(old, ignore_errors=True)
        for stale in self.directory.glob(".tmp-*"):
            if not stale.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(stale, ignore_errors=True)


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
