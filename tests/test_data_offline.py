"""Offline safety: an unprepared dataset that may not be downloaded fails fast, cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from data_fixtures import write_imagenet_tars

from mnv1.config import DataConfig
from mnv1.data.errors import DataError
from mnv1.data.preflight import preflight
from mnv1.data.prepare import prepare

# Any socket connection is an error in this child: a download attempt cannot go unnoticed.
NO_NETWORK_CHILD = """
import socket, sys

def refuse(*args, **kwargs):
    raise RuntimeError("network access attempted")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse

from mnv1.config import DataConfig
from mnv1.data.errors import DataError
from mnv1.data.preflight import preflight

try:
    preflight(DataConfig(source="tfds", name="tf_flowers", data_dir=sys.argv[1]))
except DataError as err:
    print("DataError:", err)
    sys.exit(0)
sys.exit(1)
"""


def test_unprepared_dataset_fails_promptly_without_network(data_dir: Path) -> None:
    # The timeout is the acceptance bound (a blocked TFDS download retries for minutes).
    result = subprocess.run(
        [sys.executable, "-c", NO_NETWORK_CHILD, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "DataError: data.name='tf_flowers' is not prepared" in result.stdout
    assert "data.download=true" in result.stdout
    assert "network access attempted" not in result.stdout + result.stderr
    assert not data_dir.exists()  # no partial directories


@pytest.mark.timeout(30)
def test_prepare_and_preflight_refuse_in_process(tmp_path: Path, data_dir: Path) -> None:
    cfg = DataConfig(source="tfds", name="cifar10", data_dir=str(data_dir))
    for step in (prepare, preflight):
        with pytest.raises(DataError, match=r"data\.name='cifar10' is not prepared"):
            step(cfg)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.timeout(30)
def test_missing_imagenet_tar_names_the_files(tmp_path: Path, data_dir: Path) -> None:
    manual = tmp_path / "manual"
    write_imagenet_tars(manual, val=False)
    cfg = DataConfig(
        source="tfds", name="imagenet2012", data_dir=str(data_dir), manual_dir=str(manual)
    )
    with pytest.raises(DataError) as err:
        preflight(cfg)
    message = str(err.value)
    assert "download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar" in message
    assert f"data.manual_dir={str(manual)!r} lacks ILSVRC2012_img_val.tar" in message
    assert "https://image-net.org/download-images" in message
    assert not (data_dir).exists()


@pytest.mark.timeout(30)
def test_unknown_dataset_name_is_a_data_error(data_dir: Path) -> None:
    cfg = DataConfig(source="tfds", name="no_such_dataset_xyz", data_dir=str(data_dir))
    cfg.download = True
    with pytest.raises(DataError, match=r"data\.name='no_such_dataset_xyz' is not a dataset TFDS"):
        prepare(cfg)
    assert not (data_dir).exists()
