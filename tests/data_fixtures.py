"""Builders of small on-disk datasets for the data tests (real files, real formats)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

# The first two synsets of TFDS's imagenet2012 label list, and the labels TFDS assigns to the
# first four validation file names (its validation_labels.txt).
IMAGENET_TRAIN_SYNSETS = ("n01440764", "n01443537")
IMAGENET_VAL_SYNSETS = ("n01751748", "n09193705", "n02105855", "n04263257")


def image_bytes(seed: int, size: int = 40, fmt: str = "JPEG", mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(pixels).convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_imagenet_tars(manual_dir: Path, per_class: int = 3, val: bool = True) -> None:
    """A tiny ILSVRC2012_img_train.tar (one inner tar per synset) and ILSVRC2012_img_val.tar."""
    manual_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(manual_dir / "ILSVRC2012_img_train.tar", "w") as outer:
        for c, synset in enumerate(IMAGENET_TRAIN_SYNSETS):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as tar:
                for i in range(per_class):
                    _add(tar, f"{synset}_{i}.JPEG", image_bytes(100 * c + i))
            _add(outer, f"{synset}.tar", inner.getvalue())
    if val:
        with tarfile.open(manual_dir / "ILSVRC2012_img_val.tar", "w") as tar:
            for i in range(len(IMAGENET_VAL_SYNSETS)):
                _add(tar, f"ILSVRC2012_val_{i + 1:08d}.JPEG", image_bytes(1000 + i))
