"""Training checkpoints that survive a SIGKILL at any instant, and damage on disk.

Each checkpoint is a directory ``epoch{E:04d}-step{S:06d}`` holding the model's weights together
with the optimizer state (Keras's ``save_weights`` walks the compiled optimizer too, iteration
counter included, so the learning-rate schedule resumes where it stopped) and ``state.json``,
which records where training stood and the size and SHA-256 of the weights file.

Writing: everything goes into a temporary directory beside the checkpoints, is flushed to disk
(``fsync``), and the directory is renamed into place in one step; only then is ``latest.json``
replaced, atomically, to point at it. A process killed mid-write leaves the previous checkpoint
in charge and at most a ``.tmp-*`` directory, which the next save removes.

Reading: a checkpoint is used only when its weights file has the size and checksum recorded when
it was written (a full disk or a failing volume leaves a short or altered file, which Keras
would otherwise load into an error or, worse, into wrong weights). When the newest one is
damaged, ``resume`` falls back to the next older good one; when ``latest.json`` itself cannot be
read, it scans the checkpoint directories instead; when no good one is left, the run starts from
scratch. Each damaged file is reported (``Resume.damaged``) so the run can say so.

The ``keep`` newest checkpoints are kept (``train.keep_checkpoints``, at least two, so a damaged
newest one always has one to fall back to), and they stay after the run finishes: relaunching a
finished run trains nothing and re-reports its final evaluation from the last checkpoint. To
train the same configuration afresh, delete its directory (``mnv1.run_key.checkpoint_dir``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mnv1.config import ConfigError, rule

WEIGHTS_FILE = "state.weights.h5"
STATE_FILE = "state.json"
LATEST_FILE = "latest.json"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class CheckpointState:
    """Where training stood: ``epochs_done`` epochs plus ``step_in_epoch`` steps of the next."""

    epochs_done: int
    step_in_epoch: int = 0
    steps_per_epoch: int = 0

    @property
    def name(self) -> str:
        return f"epoch{self.epochs_done:04d}-step{self.step_in_epoch:06d}"


@dataclass(frozen=True)
class Damage:
    """One checkpoint file that could not be used, and why."""

    path: str
    """Relative to the checkpoint directory: ``epoch0002-step000000/state.weights.h5``."""
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class Resume:
    """What ``CheckpointStore.resume`` found: the state restored (None: start from scratch) and
    every damaged file it met on the way, newest first."""

    state: CheckpointState | None
    damaged: tuple[Damage, ...] = field(default=())


class CheckpointError(ValueError):
    """A checkpoint that does not belong to this run as configured (not damage: a config change)."""


class CheckpointStore:
    def __init__(self, directory: Path, keep: int = 2) -> None:
        problem = rule("train.keep_checkpoints").check(keep)
        if problem is not None:
            raise ConfigError([problem])
        self.directory = Path(directory)
        self.keep = keep

    def latest(self) -> CheckpointState | None:
        """The state ``latest.json`` points at; None when there is none or it cannot be read."""
        try:
            return self._pointer()
        except _Unreadable:
            return None

    def save(self, model: Any, state: CheckpointState) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        final = self.directory / state.name
        tmp = self.directory / f".tmp-{state.name}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        weights = tmp / WEIGHTS_FILE
        model.save_weights(str(weights))
        _fsync_file(weights)
        size, digest = _measure(weights)
        record = {**asdict(state), "weights": {"size": size, "sha256": digest}}
        _write_synced(tmp / STATE_FILE, json.dumps(record))
        _fsync_dir(tmp)
        if final.exists():  # an abandoned attempt at the same point (a resume went back past it)
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(self.directory)
        # Last: until this replace, the previous checkpoint is the current one.
        _write_atomically(self.directory / LATEST_FILE, json.dumps(asdict(state)))
        self._prune(current=final)
        return final

    def resume(self, model: Any, steps_per_epoch: int | None = None) -> Resume:
        """Load the newest good checkpoint into a compiled, built model.

        Damaged checkpoints (and an unreadable ``latest.json``) are passed over and reported;
        with none good left the model is left as built (or put back so, when a load failed half
        way) and ``state`` is None. A good checkpoint written with another ``steps_per_epoch``
        raises ``CheckpointError``: that is a changed configuration, not damage.
        """
        damaged: list[Damage] = []
        try:
            pointed = self._pointer()
        except _Unreadable as err:
            damaged.append(Damage(LATEST_FILE, str(err)))
            pointed = None
        candidates = self._candidates(pointed, pointer_usable=not damaged)
        if not candidates:
            return Resume(None, tuple(damaged))
        if model.optimizer is not None and not model.optimizer.built:
            # The optimizer creates its slots lazily; they must exist to receive saved values.
            model.optimizer.build(model.trainable_variables)
        initial: list[tuple[Any, Any]] | None = None
        for name in candidates:
            state, problem = self._verified(name)
            if problem is not None:
                damaged.append(problem)
                continue
            assert state is not None
            if steps_per_epoch is not None and state.steps_per_epoch != steps_per_epoch:
                raise CheckpointError(
                    f"checkpoint {self.directory / name} was written with "
                    f"{state.steps_per_epoch} steps per epoch, this run has {steps_per_epoch}; "
                    "delete the directory to start afresh"
                )
            if initial is None:
                initial = _snapshot(model)
            try:
                model.load_weights(str(self.directory / name / WEIGHTS_FILE))
            except (OSError, ValueError, KeyError) as err:
                # Checksummed yet unreadable: written by something else. A partial load may have
                # changed some variables; the next candidate (or the reset below) overwrites them.
                damaged.append(Damage(f"{name}/{WEIGHTS_FILE}", f"cannot be loaded ({err})"))
                continue
            return Resume(state, tuple(damaged))
        if initial is not None:
            _restore(initial)
        return Resume(None, tuple(damaged))

    def restore(self, model: Any) -> CheckpointState | None:
        """``resume`` without the report: the state restored, or None."""
        return self.resume(model).state

    def _pointer(self) -> CheckpointState | None:
        pointer = self.directory / LATEST_FILE
        try:
            text = pointer.read_text()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise _Unreadable(f"cannot be read ({err})") from err
        return _parse_state(text, LATEST_FILE)

    def _checkpoint_names(self) -> list[str]:
        """Complete checkpoint directories (renamed into place), oldest first."""
        if not self.directory.is_dir():
            return []
        return sorted(
            p.name
            for p in self.directory.iterdir()
            if p.is_dir() and p.name.startswith("epoch") and "-step" in p.name
        )

    def _candidates(self, pointed: CheckpointState | None, pointer_usable: bool) -> list[str]:
        """Checkpoints to try, newest first: the one ``latest.json`` points at and those older
        than it; every checkpoint directory when ``latest.json`` cannot be read or is missing (a
        save killed between the rename and the pointer leaves a complete, unpointed one)."""
        names = self._checkpoint_names()
        if pointed is not None and pointer_usable:
            older = [n for n in names if n < pointed.name]
            return [pointed.name, *reversed(older)]
        return list(reversed(names))

    def _verified(self, name: str) -> tuple[CheckpointState | None, Damage | None]:
        folder = self.directory / name
        if not folder.is_dir():
            return None, Damage(name, "is missing (latest.json points at it)")
        try:
            text = (folder / STATE_FILE).read_text()
        except OSError as err:
            return None, Damage(f"{name}/{STATE_FILE}", f"cannot be read ({err})")
        try:
            state = _parse_state(text, f"{name}/{STATE_FILE}")
            record = json.loads(text)["weights"]
            expected_size, expected_digest = int(record["size"]), str(record["sha256"])
        except (_Unreadable, KeyError, TypeError, ValueError) as err:
            reason = str(err) if isinstance(err, _Unreadable) else "records no size and checksum"
            return None, Damage(f"{name}/{STATE_FILE}", reason)
        assert state is not None
        if state.name != name:
            return None, Damage(f"{name}/{STATE_FILE}", f"describes {state.name}, not {name}")
        weights = folder / WEIGHTS_FILE
        where = f"{name}/{WEIGHTS_FILE}"
        try:
            size, digest = _measure(weights)
        except OSError as err:
            return None, Damage(where, f"cannot be read ({err.strerror or err})")
        if size != expected_size:
            return None, Damage(
                where, f"truncated or altered: {size:,} bytes, {expected_size:,} written"
            )
        if digest != expected_digest:
            return None, Damage(where, "checksum differs from the one recorded when it was written")
        return state, None

    def _prune(self, current: Path) -> None:
        """Keep the ``keep`` newest checkpoints up to ``current``; drop any newer than it (left by
        an attempt that a resume went back past) and stale temporary directories."""
        names = self._checkpoint_names()
        upto = [n for n in names if n <= current.name]
        doomed = [n for n in names if n > current.name] + upto[: -self.keep]
        for name in doomed:
            shutil.rmtree(self.directory / name, ignore_errors=True)
        for stale in self.directory.glob(".tmp-*"):
            if not stale.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(stale, ignore_errors=True)


class _Unreadable(ValueError):
    """A JSON record that cannot be parsed into a ``CheckpointState``."""


def _parse_state(text: str, where: str) -> CheckpointState:
    try:
        data = json.loads(text)
        state = CheckpointState(
            int(data["epochs_done"]), int(data["step_in_epoch"]), int(data["steps_per_epoch"])
        )
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise _Unreadable(f"is not a checkpoint record ({type(err).__name__}: {err})") from err
    if min(state.epochs_done, state.step_in_epoch, state.steps_per_epoch) < 0:
        raise _Unreadable(f"holds negative counts: {text[:200]!r}")
    return state


def _measure(path: Path) -> tuple[int, str]:
    """Size in bytes and SHA-256 (hex) of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _snapshot(model: Any) -> list[tuple[Any, Any]]:
    """Every model and optimizer variable with its value now (to undo a load that failed)."""
    variables = list(model.weights)
    if model.optimizer is not None:
        variables += list(model.optimizer.variables)
    return [(v, v.numpy()) for v in variables]


def _restore(snapshot: list[tuple[Any, Any]]) -> None:
    for variable, value in snapshot:
        variable.assign(value)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable (a no-op where directories cannot be
    opened for it)."""
    with contextlib.suppress(OSError):
        _fsync_file(path)


def _write_synced(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    _write_synced(tmp, text)
    os.replace(tmp, path)
    _fsync_dir(path.parent)
