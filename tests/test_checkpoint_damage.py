"""Checkpoints on real files: written whole and made current in one step, verified when read,
a damaged newest one falls back to the previous good one, none good starts from scratch, and only
``train.keep_checkpoints`` of them are kept (``mnv1.training.checkpoint``)."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import keras
import numpy as np
import pytest

from mnv1.config import ConfigError
from mnv1.runlog import MemoryRunLog
from mnv1.training.checkpoint import (
    LATEST_FILE,
    STATE_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    CheckpointState,
    CheckpointStore,
    Damage,
)
from mnv1.training.resume import (
    TAG_CHECKPOINT_DAMAGED,
    TAG_CHECKPOINT_FALLBACK,
    resume_checkpoint,
)

STEPS = 2


def _model() -> keras.Model:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="dense")])
    model.compile(optimizer=keras.optimizers.RMSprop(0.01), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def _mark(model: keras.Model, value: float) -> None:
    """Every weight and the optimizer's step counter set from ``value``: a checkpoint's identity."""
    for weight in model.weights:
        weight.assign(np.full(weight.shape, value, dtype="float32"))
    model.optimizer.iterations.assign(int(value))


def _kernel(model: keras.Model) -> float:
    return float(model.get_layer("dense").kernel.numpy()[0, 0])


def _store_with_epochs(path: Path, epochs: tuple[int, ...], keep: int = 2) -> CheckpointStore:
    store = CheckpointStore(path, keep=keep)
    model = _model()
    for epoch in epochs:
        _mark(model, float(epoch))
        store.save(model, CheckpointState(epoch, 0, STEPS))
    return store


def _weights(store: CheckpointStore, epoch: int) -> Path:
    return store.directory / CheckpointState(epoch, 0, STEPS).name / WEIGHTS_FILE


def _truncate(path: Path, size: int = 1000) -> int:
    whole = path.stat().st_size
    with path.open("r+b") as handle:
        handle.truncate(size)
    return whole


def test_a_checkpoint_records_its_size_and_checksum_and_leaves_nothing_half_written(
    tmp_path: Path,
) -> None:
    store = _store_with_epochs(tmp_path, (1,))
    folder = tmp_path / "epoch0001-step000000"
    record = json.loads((folder / STATE_FILE).read_text())
    data = (folder / WEIGHTS_FILE).read_bytes()
    assert record == {
        "epochs_done": 1,
        "step_in_epoch": 0,
        "steps_per_epoch": STEPS,
        "weights": {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()},
    }
    assert json.loads((tmp_path / LATEST_FILE).read_text()) == {
        "epochs_done": 1,
        "step_in_epoch": 0,
        "steps_per_epoch": STEPS,
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch0001-step000000", LATEST_FILE]
    assert store.latest() == CheckpointState(1, 0, STEPS)


def test_the_newest_keep_checkpoints_are_kept_and_the_rest_cleaned(tmp_path: Path) -> None:
    (tmp_path / ".tmp-epoch0009-step000000-999999").mkdir()  # a writer killed mid-save
    _store_with_epochs(tmp_path, (1, 2, 3, 4, 5), keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "epoch0003-step000000",
        "epoch0004-step000000",
        "epoch0005-step000000",
        LATEST_FILE,
    ]
    # A resume that went back to epoch 1 abandons what came after it: saving epoch 2 again
    # drops the newer ones, so "the newest kept" is always this run's own line of checkpoints.
    store = _store_with_epochs(tmp_path, (2,), keep=3)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["epoch0002-step000000"]
    assert store.latest() == CheckpointState(2, 0, STEPS)


def test_keep_checkpoints_below_two_is_refused_by_the_rule_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"train\.keep_checkpoints=1: must be an integer >= 2"):
        CheckpointStore(tmp_path, keep=1)


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_good_one(
    tmp_path: Path,
) -> None:
    store = _store_with_epochs(tmp_path, (1, 2))
    whole = _truncate(_weights(store, 2))
    model = _model()
    found = store.resume(model, STEPS)
    assert found.state == CheckpointState(1, 0, STEPS)
    assert found.damaged == (
        Damage(
            "epoch0002-step000000/state.weights.h5",
            f"truncated or altered: 1,000 bytes, {whole:,} written",
        ),
    )
    assert _kernel(model) == 1.0 and int(model.optimizer.iterations) == 1


def test_an_altered_checkpoint_is_caught_by_its_checksum(tmp_path: Path) -> None:
    store = _store_with_epochs(tmp_path, (1, 2))
    path = _weights(store, 2)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # same size, one byte flipped
    path.write_bytes(bytes(data))
    found = store.resume(_model(), STEPS)
    assert found.state == CheckpointState(1, 0, STEPS)
    assert [str(d) for d in found.damaged] == [
        "epoch0002-step000000/state.weights.h5: checksum differs from the one recorded when it "
        "was written"
    ]


def test_with_every_checkpoint_damaged_the_run_starts_from_scratch(tmp_path: Path) -> None:
    store = _store_with_epochs(tmp_path, (1, 2))
    _truncate(_weights(store, 2))
    _truncate(_weights(store, 1), 0)
    model = _model()
    _mark(model, 7.0)  # as built: what a fresh start must keep
    found = store.resume(model, STEPS)
    assert found.state is None
    assert [d.path for d in found.damaged] == [
        "epoch0002-step000000/state.weights.h5",
        "epoch0001-step000000/state.weights.h5",
    ]
    assert _kernel(model) == 7.0 and int(model.optimizer.iterations) == 7


def test_a_load_that_fails_half_way_leaves_the_model_as_built(tmp_path: Path) -> None:
    """Checksummed but not a weights file (written by something else): the load fails after
    Keras may have set some variables; the model must still start from its own values."""
    store = _store_with_epochs(tmp_path, (1,))
    folder = tmp_path / "epoch0001-step000000"
    junk = b"not an HDF5 file" * 64
    (folder / WEIGHTS_FILE).write_bytes(junk)
    record = json.loads((folder / STATE_FILE).read_text())
    record["weights"] = {"size": len(junk), "sha256": hashlib.sha256(junk).hexdigest()}
    (folder / STATE_FILE).write_text(json.dumps(record))
    model = _model()
    _mark(model, 7.0)
    found = store.resume(model, STEPS)
    assert found.state is None
    [damage] = found.damaged
    assert damage.path == "epoch0001-step000000/state.weights.h5"
    assert damage.reason.startswith("cannot be loaded (")
    assert _kernel(model) == 7.0 and int(model.optimizer.iterations) == 7


@pytest.mark.parametrize(
    ("pointer", "reason"),
    [
        ('{"epochs_do', "is not a checkpoint record (JSONDecodeError: "),
        ('{"epochs_done": 2}', "is not a checkpoint record (KeyError: 'step_in_epoch')"),
        ("", "is not a checkpoint record (JSONDecodeError: "),
    ],
)
def test_an_unreadable_latest_json_falls_back_to_scanning_the_checkpoints(
    tmp_path: Path, pointer: str, reason: str
) -> None:
    store = _store_with_epochs(tmp_path, (1, 2))
    (tmp_path / LATEST_FILE).write_text(pointer)
    assert store.latest() is None
    model = _model()
    found = store.resume(model, STEPS)
    assert found.state == CheckpointState(2, 0, STEPS)
    [damage] = found.damaged
    assert damage.path == LATEST_FILE and damage.reason.startswith(reason)
    assert _kernel(model) == 2.0


def test_latest_json_pointing_at_a_missing_checkpoint_falls_back(tmp_path: Path) -> None:
    store = _store_with_epochs(tmp_path, (1,))
    (tmp_path / LATEST_FILE).write_text(json.dumps(CheckpointState(4, 0, STEPS).__dict__))
    found = store.resume(_model(), STEPS)
    assert found.state == CheckpointState(1, 0, STEPS)
    assert [str(d) for d in found.damaged] == [
        "epoch0004-step000000: is missing (latest.json points at it)"
    ]


def test_a_save_killed_before_latest_json_leaves_its_checkpoint_usable(tmp_path: Path) -> None:
    """Killed between the rename and the pointer: the directory is complete and verified."""
    store = _store_with_epochs(tmp_path, (1,))
    (tmp_path / LATEST_FILE).unlink()
    found = store.resume(_model(), STEPS)
    assert found == type(found)(CheckpointState(1, 0, STEPS), ())


def test_a_checkpoint_of_another_step_budget_is_a_config_change_not_damage(
    tmp_path: Path,
) -> None:
    store = _store_with_epochs(tmp_path, (1,))
    with pytest.raises(CheckpointError, match="written with 2 steps per epoch, this run has 5"):
        store.resume(_model(), 5)


def test_the_run_is_tagged_and_one_line_says_where_it_goes_on_from(tmp_path: Path) -> None:
    store = _store_with_epochs(tmp_path, (1, 2))
    whole = _truncate(_weights(store, 2))
    run_log, out = MemoryRunLog(), io.StringIO()
    state = resume_checkpoint(store, _model(), STEPS, run_log, stream=out)
    assert state == CheckpointState(1, 0, STEPS)
    damage = (
        "epoch0002-step000000/state.weights.h5: truncated or altered: 1,000 bytes, "
        f"{whole:,} written"
    )
    assert run_log.tags == {
        TAG_CHECKPOINT_DAMAGED: damage,
        TAG_CHECKPOINT_FALLBACK: "epoch0001-step000000",
    }
    assert out.getvalue() == (
        f"mnv1.training: damaged checkpoint in {tmp_path}: {damage}; resuming from "
        "epoch0001-step000000 (epoch 1, step 0) in the same run\n"
    )

    _truncate(_weights(store, 1))
    run_log, out = MemoryRunLog(), io.StringIO()
    assert resume_checkpoint(store, _model(), STEPS, run_log, stream=out) is None
    assert run_log.tags[TAG_CHECKPOINT_FALLBACK] == "none"
    [line] = out.getvalue().splitlines()
    assert line.endswith("no good checkpoint is left: training from scratch in the same run")

    # No damage: nothing tagged, nothing printed.
    fresh = CheckpointStore(tmp_path / "fresh")
    run_log, out = MemoryRunLog(), io.StringIO()
    assert resume_checkpoint(fresh, _model(), STEPS, run_log, stream=out) is None
    assert run_log.tags == {} and out.getvalue() == ""
