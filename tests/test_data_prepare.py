"""Preparing is idempotent and safe when two processes start it at once."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnv1.config import DataConfig, SyntheticConfig
from mnv1.data.prepare import prepare

TINY = SyntheticConfig(train_size=40, val_size=20, image_size=64)

# Each child imports everything, says it is ready, waits for "go", then prepares: the two
# prepare() calls start within milliseconds of each other.
CHILD = """
import logging, pathlib, sys, time
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
from mnv1.config import DataConfig, SyntheticConfig
from mnv1.data.prepare import prepare
data_dir, ready, go = sys.argv[1], pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.005)
tiny = SyntheticConfig(train_size=40, val_size=20, image_size=64)
cfg = DataConfig(data_dir=data_dir, synthetic=tiny)
print("FINGERPRINT", prepare(cfg))
"""


def _wait_for(paths: list[Path], procs: list[subprocess.Popen], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not all(p.exists() for p in paths):
        assert all(proc.poll() is None for proc in procs), "a child exited before it was ready"
        assert time.monotonic() < deadline, "children did not get ready"
        time.sleep(0.05)


def test_two_processes_preparing_at_once_both_succeed(tmp_path: Path) -> None:
    data_dir = tmp_path / "tfds"
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data_dir), str(r), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    try:
        _wait_for(ready, procs, seconds=120)
        go.touch()
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    fingerprints = [
        next(line for line in out.splitlines() if line.startswith("FINGERPRINT"))
        for out, _ in outputs
    ]
    assert fingerprints[0] == fingerprints[1]
    assert "splits={'train': 40, 'validation': 20}" in fingerprints[0]
    # The lock let exactly one of them build it; the other reused the result.
    logs = "".join(err for _, err in outputs)
    assert logs.count("mnv1.data.prepare: preparing mnv1_synthetic/") == 1
    config_dir = data_dir / "mnv1_synthetic" / "s0_tr40_va20_c10_px64"
    assert [p.name for p in config_dir.iterdir()] == ["1.0.0"]  # no incomplete.* leftovers


def test_prepare_is_idempotent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = DataConfig(data_dir=str(tmp_path), synthetic=TINY)
    with caplog.at_level(logging.INFO, logger="mnv1.data.prepare"):
        first = prepare(cfg)
        info = tmp_path / "mnv1_synthetic" / "s0_tr40_va20_c10_px64" / "1.0.0" / "dataset_info.json"
        stamp = info.stat().st_mtime_ns
        second = prepare(cfg)
    assert first == second
    assert info.stat().st_mtime_ns == stamp
    assert [r.getMessage() for r in caplog.records if "preparing" in r.getMessage()] == [
        f"preparing mnv1_synthetic/s0_tr40_va20_c10_px64 into {tmp_path}"
    ]


def test_data_dir_with_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    prepare(DataConfig(data_dir="~/tfds", synthetic=TINY))
    assert (tmp_path / "home" / "tfds" / "mnv1_synthetic").is_dir()
    assert not (tmp_path / "~").exists()
