"""A local image folder: PNG, JPEG, grayscale, CMYK and one corrupt file, both layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
from data_fixtures import image_bytes

from mnv1.config import DataConfig
from mnv1.data import builders, preprocess
from mnv1.data.errors import DataError
from mnv1.data.pipeline import load_datasets
from mnv1.data.preflight import preflight

TRAIN_FILES = {
    "cat": {
        "a.png": ("PNG", "RGB"),
        "b.jpg": ("JPEG", "RGB"),
        "c.jpeg": ("JPEG", "L"),  # grayscale
        "d.png": ("PNG", "L"),
        "e.jpg": ("JPEG", "CMYK"),  # TensorFlow's decoder alone cannot read it as RGB
    },
    "dog": {"f.png": ("PNG", "RGB"), "g.JPG": ("JPEG", "RGB"), "h.png": ("PNG", "P")},
}


def _write_tree(root: Path, classes: dict[str, dict[str, tuple[str, str]]]) -> None:
    for seed, (cls, files) in enumerate(classes.items()):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i, (name, (fmt, mode)) in enumerate(files.items()):
            (root / cls / name).write_bytes(image_bytes(10 * seed + i, size=36, fmt=fmt, mode=mode))


@pytest.fixture
def image_tree(tmp_path: Path) -> Path:
    root = tmp_path / "pets"
    _write_tree(root / "train", TRAIN_FILES)
    _write_tree(root / "val", {"cat": {"v1.jpg": ("JPEG", "RGB")}, "dog": {"v2.png": ("PNG", "L")}})
    good = image_bytes(99, size=36)
    (root / "train" / "dog" / "broken.jpg").write_bytes(good[: len(good) // 3])  # truncated
    (root / "train" / "dog" / "notes.txt").write_text("not an image: ignored by extension")
    return root


def _cfg(root: Path, data_dir: Path, **kw) -> DataConfig:
    return DataConfig(source="folder", path=str(root), data_dir=str(data_dir), **kw)


def test_corrupt_image_is_named_and_nothing_is_left_behind(
    image_tree: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "tfds"
    with pytest.raises(DataError) as err:
        preflight(_cfg(image_tree, data_dir))
    message = str(err.value)
    assert str(image_tree / "train" / "dog" / "broken.jpg") in message
    assert "data.skip_bad_images=true" in message
    assert not data_dir.exists()


def test_skip_bad_images_skips_and_counts(image_tree: Path, tmp_path: Path) -> None:
    cfg = _cfg(image_tree, tmp_path / "tfds", skip_bad_images=True)
    fingerprint = preflight(cfg)
    assert fingerprint.skipped_images == 1
    assert fingerprint.splits == {"train": 8, "validation": 2}
    assert fingerprint.num_classes == 2
    assert fingerprint.name.startswith("mnv1_image_folder/pets_")
    assert fingerprint.as_tags()["mnv1.data.skipped_images"] == "1"

    builder = builders.make_builder(cfg)
    assert builder.info.features["label"].names == ["cat", "dog"]
    assert builder.info.metadata["skipped_files"] == [str(image_tree / "train/dog/broken.jpg")]
    ds = builder.as_dataset(split="train", decoders={"image": tfds.decode.SkipDecoding()})
    decoded = {
        ex["file_name"].numpy().decode(): (
            preprocess.decode_image(ex["image"]).numpy(),
            int(ex["label"]),
        )
        for ex in ds
    }
    assert sorted(decoded) == sorted(
        f"train/{cls}/{name}" for cls, files in TRAIN_FILES.items() for name in files
    )
    for image, _ in decoded.values():
        assert image.shape == (36, 36, 3)
    gray = decoded["train/cat/c.jpeg"][0]
    assert np.array_equal(gray[..., 0], gray[..., 1]) and np.array_equal(gray[..., 1], gray[..., 2])
    assert decoded["train/dog/f.png"][1] == 1

    data = load_datasets(cfg, resolution=32, global_batch=4)
    batches = [(x.shape, y.dtype.name) for x, y in data.train]
    assert batches == [((4, 32, 32, 3), "int32")] * 2
    assert sum(int(x.shape[0]) for x, _ in data.val) == 2


def test_one_tree_is_split_by_val_fraction(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    five = {f"{i}.png": ("PNG", "RGB") for i in range(5)}
    _write_tree(root, {"ant": five, "bee": five, "cow": five})
    first = preflight(_cfg(root, tmp_path / "tfds", val_fraction=0.2))
    assert first.splits == {"train": 12, "validation": 3}
    assert first.num_classes == 3
    # The held-out images are fixed: preparing again elsewhere picks the same ones.
    again = preflight(_cfg(root, tmp_path / "tfds2", val_fraction=0.2))
    names = []
    for data_dir in ("tfds", "tfds2"):
        builder = builders.make_builder(_cfg(root, tmp_path / data_dir, val_fraction=0.2))
        names.append(
            sorted(ex["file_name"].numpy() for ex in builder.as_dataset(split="validation"))
        )
    assert first == again and names[0] == names[1]


def test_changed_folder_is_prepared_again(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    three = {f"{i}.png": ("PNG", "RGB") for i in range(3)}
    _write_tree(root, {"ant": three, "bee": three})
    cfg = _cfg(root, tmp_path / "tfds", val_fraction=0.34)
    assert preflight(cfg).splits == {"train": 4, "validation": 2}
    (root / "bee" / "3.png").write_bytes(image_bytes(7, size=36, fmt="PNG"))
    assert preflight(cfg).splits == {"train": 5, "validation": 2}
