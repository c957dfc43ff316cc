"""The embedded synthetic dataset: a real TFDS builder, deterministic and balanced."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from mnv1.config import DataConfig, SyntheticConfig
from mnv1.data import synthetic, synthetic_images
from mnv1.data.prepare import prepare

TINY = SyntheticConfig(train_size=40, val_size=20, num_classes=10, image_size=64, seed=3)


def _cfg(data_dir: Path, synthetic_cfg: SyntheticConfig = TINY) -> DataConfig:
    return DataConfig(data_dir=str(data_dir), synthetic=synthetic_cfg)


def _examples(data_dir: Path, s: SyntheticConfig, split: str) -> list[tuple[bytes, int]]:
    builder = synthetic.builder(s, str(data_dir))
    ds = builder.as_dataset(
        split=split, shuffle_files=False, decoders={"image": tfds.decode.SkipDecoding()}
    )
    return [(ex["image"].numpy(), int(ex["label"])) for ex in ds]


def test_registered_under_its_name() -> None:
    assert synthetic.Mnv1Synthetic.name == "mnv1_synthetic"
    assert "mnv1_synthetic" in tfds.list_builders()


def test_same_seed_gives_identical_examples(tmp_path: Path) -> None:
    first = prepare(_cfg(tmp_path / "a"))
    second = prepare(_cfg(tmp_path / "b"))
    assert first == second
    for split in ("train", "validation"):
        assert _examples(tmp_path / "a", TINY, split) == _examples(tmp_path / "b", TINY, split)
    other = SyntheticConfig(**{**TINY.__dict__, "seed": 4})
    prepare(_cfg(tmp_path / "a", other))
    assert _examples(tmp_path / "a", other, "train") != _examples(tmp_path / "a", TINY, "train")


def test_classes_balanced_and_images_native_size(tmp_path: Path) -> None:
    fingerprint = prepare(_cfg(tmp_path))
    assert fingerprint.name == "mnv1_synthetic/s3_tr40_va20_c10_px64"
    assert fingerprint.version == "1.0.0"
    assert fingerprint.splits == {"train": 40, "validation": 20}
    assert fingerprint.num_classes == 10
    train = collections.Counter(label for _, label in _examples(tmp_path, TINY, "train"))
    val = collections.Counter(label for _, label in _examples(tmp_path, TINY, "validation"))
    assert train == {k: 4 for k in range(10)}
    assert val == {k: 2 for k in range(10)}
    ds = synthetic.builder(TINY, str(tmp_path)).as_dataset(split="train").take(1)
    (example,) = list(ds)
    assert example["image"].shape == (64, 64, 3)


def test_sizes_and_seeds_never_share_a_directory(tmp_path: Path) -> None:
    configs = [TINY, SyntheticConfig(**{**TINY.__dict__, "train_size": 30})]
    for s in configs:
        prepare(_cfg(tmp_path, s))
    dirs = sorted(p.name for p in (tmp_path / "mnv1_synthetic").iterdir())
    assert dirs == ["s3_tr30_va20_c10_px64", "s3_tr40_va20_c10_px64"]


def test_every_class_needs_shape_and_texture() -> None:
    pairs = [synthetic_images.class_attributes(k) for k in range(10)]
    assert len(set(pairs)) == 10
    shapes = collections.Counter(s for s, _ in pairs)
    textures = collections.Counter(t for _, t in pairs)
    # Each shape comes with two textures and each texture with two shapes.
    assert set(shapes.values()) == {2} and set(textures.values()) == {2}
    all_pairs = {synthetic_images.class_attributes(k) for k in range(synthetic_images.MAX_CLASSES)}
    assert len(all_pairs) == 25


def test_balanced_labels_differ_by_at_most_one() -> None:
    labels = synthetic_images.balanced_labels(43, 10, np.random.default_rng(0))
    counts = collections.Counter(labels.tolist())
    assert sorted(counts) == list(range(10))
    assert max(counts.values()) - min(counts.values()) == 1
    assert sum(counts.values()) == 43


def test_render_is_deterministic_and_uint8() -> None:
    labels = np.arange(10)
    a = synthetic_images.render(labels, 64, np.random.default_rng(7))
    b = synthetic_images.render(labels, 64, np.random.default_rng(7))
    assert a.dtype == np.uint8 and a.shape == (10, 64, 64, 3)
    assert np.array_equal(a, b)
    # Not flat: every image has both dark and light pixels from shapes, texture and clutter.
    assert all(img.max() - img.min() > 60 for img in a)
