"""Datasets built from files in ``manual_dir`` through the real TFDS ``download_and_prepare``."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np
from data_fixtures import (
    IMAGENET_TRAIN_SYNSETS,
    IMAGENET_VAL_SYNSETS,
    image_bytes,
    write_imagenet_tars,
)
from tfds_fixtures import tiny_manual_flowers

from mnv1.config import DataConfig
from mnv1.data import builders
from mnv1.data.pipeline import load_datasets
from mnv1.data.preflight import preflight


def test_imagenet2012_from_manual_tars(tmp_path: Path) -> None:
    manual = tmp_path / "manual"
    write_imagenet_tars(manual, per_class=3)
    cfg = DataConfig(
        source="tfds",
        name="imagenet2012",
        data_dir=str(tmp_path / "tfds"),
        manual_dir=str(manual),
        download=False,  # nothing to download: both splits come from the tars
    )
    fingerprint = preflight(cfg)
    assert fingerprint.name == "imagenet2012"
    assert fingerprint.version == "5.1.0"
    assert fingerprint.splits == {"train": 6, "validation": 4}
    assert fingerprint.num_classes == 1000
    assert (tmp_path / "tfds" / "imagenet2012" / "5.1.0" / "dataset_info.json").is_file()

    builder = builders.make_builder(cfg)
    names = builder.info.features["label"].names
    train_labels = collections.Counter(
        names[int(ex["label"])] for ex in builder.as_dataset(split="train")
    )
    assert train_labels == {s: 3 for s in IMAGENET_TRAIN_SYNSETS}
    val_labels = sorted(names[int(ex["label"])] for ex in builder.as_dataset(split="validation"))
    assert val_labels == sorted(IMAGENET_VAL_SYNSETS)

    data = load_datasets(cfg, resolution=32, global_batch=4)
    ((x, y),) = list(data.train)
    assert x.shape == (4, 32, 32, 3) and y.dtype.name == "int32"
    assert sum(int(b[0].shape[0]) for b in data.val) == 4


def test_train_only_dataset_from_manual_dir_is_sliced(tmp_path: Path) -> None:
    assert tiny_manual_flowers.TinyManualFlowers.name == "tiny_manual_flowers"  # registered
    manual = tmp_path / "manual"
    manual.mkdir()
    for i in range(10):
        (manual / f"{['daisy', 'rose'][i % 2]}_{i}.png").write_bytes(
            image_bytes(i, size=24, fmt="PNG")
        )
    cfg = DataConfig(
        source="tfds",
        name="tiny_manual_flowers",
        data_dir=str(tmp_path / "tfds"),
        manual_dir=str(manual),
        val_fraction=0.3,
        max_val_examples=2,
    )
    fingerprint = preflight(cfg)
    assert fingerprint.splits == {"train": 7, "validation": 3}
    assert fingerprint.num_classes == 2
    builder = builders.make_builder(cfg)
    splits = builders.resolve_splits(builder, cfg)
    assert (splits.train, splits.val) == ("train[:7]", "train[7:]")

    data = load_datasets(cfg, resolution=32, global_batch=3, seed=5)
    assert (data.train_examples, data.val_examples) == (7, 2)  # max_val_examples applies
    assert [int(x.shape[0]) for x, _ in data.train] == [3, 3]  # the remainder is dropped
    assert [int(x.shape[0]) for x, _ in data.val] == [2]
    # The slices are disjoint and cover the split.
    keys = [
        sorted(int(np.sum(ex["image"].numpy())) for ex in builder.as_dataset(split=s))
        for s in ("train[:7]", "train[7:]", "train")
    ]
    assert sorted(keys[0] + keys[1]) == keys[2]
    assert os.listdir(tmp_path / "tfds" / "tiny_manual_flowers") == ["1.0.0"]
