"""A wrong ``data.manual_dir`` for ImageNet is named with what it holds and which of the two tars
it lacks, up front (``mnv1.data.check``) and from ``mnv1-train`` (exit 2, nothing created)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_support import Workspace

from mnv1.config import DataConfig
from mnv1.data import check

TRAIN, VAL = "ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"
URL = "https://image-net.org/download-images"


def _imagenet(tmp_path: Path, manual: Path) -> DataConfig:
    return DataConfig(
        source="tfds", name="imagenet2012", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual)
    )


def _tail(tmp_path: Path) -> str:
    return (
        f"data.name='imagenet2012' is not prepared under data.data_dir={str(tmp_path / 'tfds')!r} "
        f"and TFDS cannot download it; download {TRAIN} and {VAL} from {URL} (free "
        "registration) into that directory; the first run then prepares it into data.data_dir "
        "once"
    )


def test_an_empty_manual_dir_says_it_is_empty_and_lacks_both_tars(tmp_path: Path) -> None:
    manual = tmp_path / "manual"
    manual.mkdir()
    assert check.problems(_imagenet(tmp_path, manual)) == [
        f"data.manual_dir={str(manual)!r} lacks {TRAIN}, {VAL} (the directory is empty): "
        + _tail(tmp_path)
    ]


def test_a_manual_dir_with_only_the_train_tar_names_the_missing_val_tar(tmp_path: Path) -> None:
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / TRAIN).write_bytes(b"tiny stand-in")  # only its name is checked up front
    (manual / "notes").mkdir()
    assert check.problems(_imagenet(tmp_path, manual)) == [
        f"data.manual_dir={str(manual)!r} lacks {VAL} (it holds {TRAIN}, notes/): "
        + _tail(tmp_path)
    ]


def test_a_manual_dir_that_does_not_exist_says_so(tmp_path: Path) -> None:
    manual = tmp_path / "nowhere"
    [found] = check.problems(_imagenet(tmp_path, manual))
    assert found.startswith(f"data.manual_dir={str(manual)!r} lacks {TRAIN}, {VAL} (no such ")


def test_a_crowded_manual_dir_is_summarised(tmp_path: Path) -> None:
    manual = tmp_path / "manual"
    manual.mkdir()
    for i in range(7):
        (manual / f"part{i}.tar").write_bytes(b"")
    [found] = check.problems(_imagenet(tmp_path, manual))
    assert "(it holds part0.tar, part1.tar, part2.tar, part3.tar, part4.tar and 2 more)" in found


def test_an_empty_manual_dir_of_another_dataset_says_what_it_holds(tmp_path: Path) -> None:
    manual = tmp_path / "manual"
    manual.mkdir()
    cfg = DataConfig(
        source="tfds", name="tf_flowers", data_dir=str(tmp_path / "tfds"), manual_dir=str(manual)
    )
    [found] = check.problems(cfg)
    assert found.startswith(
        f"data.manual_dir={str(manual)!r} holds nothing to prepare from (the directory is "
        "empty): data.name='tf_flowers' is not prepared under"
    )


@pytest.mark.timeout(120)
def test_mnv1_train_names_the_directory_and_the_missing_tar(ws: Workspace, tmp_path: Path) -> None:
    manual = tmp_path.parent / f"{tmp_path.name}-manual"  # outside the launch directory
    manual.mkdir()
    (manual / TRAIN).write_bytes(b"tiny stand-in")
    done = ws.train("data=imagenet", f"data.manual_dir={manual}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"data.manual_dir={str(manual)!r} lacks {VAL} (it holds {TRAIN})" in done.stderr
    assert "nothing was started" in done.stderr
    assert sorted(p.name for p in ws.root.iterdir()) == []
