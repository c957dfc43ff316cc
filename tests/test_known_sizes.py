"""Split sizes before any example is read: a prepared dataset's TFDS metadata (written here by
TFDS's own ``DatasetInfo``, as preparing it would), ImageNet's published sizes while it is not
prepared, and nothing for an unprepared dataset whose sizes are not published here. Each goes
through the run's own ``resolve_splits`` (validation tail, held-out share)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import tensorflow_datasets as tfds

from mnv1.config import DataConfig, RunConfig
from mnv1.data.known_sizes import epoch_sizes
from mnv1.sweep.plan import split_sizes


def tfds_data(data_dir: Path, name: str, **changes: Any) -> DataConfig:
    base = replace(RunConfig().data, source="tfds", name=name, data_dir=str(data_dir))
    return replace(base, **changes)


def write_metadata(data_dir: Path, name: str, splits: dict[str, int]) -> None:
    """What preparing ``name`` leaves besides its records: ``dataset_info.json`` with the sizes."""
    builder = tfds.builder(name, data_dir=str(data_dir))
    infos = [tfds.core.SplitInfo(name=k, shard_lengths=[n], num_bytes=0) for k, n in splits.items()]
    builder.info.set_splits(tfds.core.SplitDict(infos))
    builder.data_path.mkdir(parents=True, exist_ok=True)
    builder.info.write_to_directory(builder.data_path)


def test_a_prepared_datasets_tfds_metadata_gives_its_sizes(tmp_path: Path) -> None:
    assert epoch_sizes(tfds_data(tmp_path, "mnist")) is None  # not prepared, not published
    write_metadata(tmp_path, "mnist", {"train": 60_000, "test": 10_000})
    # No validation split: its last 10% (data.val_fraction) validates, as in a run.
    assert epoch_sizes(tfds_data(tmp_path, "mnist", val_fraction=0.1)) == (54_000, 6_000)
    assert epoch_sizes(tfds_data(tmp_path, "mnist", val_split="test")) == (60_000, 10_000)
    held = tfds_data(tmp_path, "mnist", val_split="test", holdout_percent=10)
    assert epoch_sizes(held) == (54_000, 6_000)
    # A split the dataset lacks: unknown here, and the run names it.
    assert epoch_sizes(tfds_data(tmp_path, "mnist", train_split="training")) is None


def test_imagenet_is_known_before_it_is_prepared(tmp_path: Path) -> None:
    imagenet = tfds_data(tmp_path, "imagenet2012")
    assert epoch_sizes(imagenet) == (1_281_167, 50_000)
    # mnv1-tune's held-out tail: round(1,281,167 × 10%) = 128,117 images.
    assert epoch_sizes(replace(imagenet, holdout_percent=10)) == (1_153_050, 128_117)
    cfg = replace(RunConfig(), data=replace(imagenet, max_val_examples=1000))
    assert split_sizes(cfg) == (1_281_167, 1000)
