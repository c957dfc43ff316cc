"""How a local image folder is laid out: pure Python (the config check reads it before any TF).

Two layouts, both one subfolder per class:

* ``path/train/<class>/...`` with ``path/val/<class>/...`` (or ``validation/``): splits as given;
* ``path/<class>/...`` (or only ``path/train/<class>/...``): one tree, split into train and
  validation by ``data.val_fraction`` when the dataset is prepared.

Classes are the sorted names of the class subfolders of the training tree, so a label id means the
same class in both splits. Images are found recursively below each class folder by extension.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
)
TRAIN_DIRS: tuple[str, ...] = ("train",)
VAL_DIRS: tuple[str, ...] = ("val", "validation")


@dataclass(frozen=True)
class FolderLayout:
    root: Path
    train_dir: Path
    val_dir: Path | None
    """None: the validation split is carved out of ``train_dir`` by ``data.val_fraction``."""
    classes: tuple[str, ...]


def subdirs(path: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))


def is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS and not name.startswith(".")


def detect(root: Path) -> FolderLayout:
    """The layout of an existing directory (``train/``+``val/``, ``train/`` alone, or one tree)."""
    children = subdirs(root)
    train = next((root / d for d in TRAIN_DIRS if d in children), None)
    val = next((root / d for d in VAL_DIRS if d in children), None)
    if train is None:
        return FolderLayout(root=root, train_dir=root, val_dir=None, classes=tuple(children))
    return FolderLayout(root=root, train_dir=train, val_dir=val, classes=tuple(subdirs(train)))


def images_in(class_dir: Path) -> list[Path]:
    """Every image file below one class folder, in a stable (sorted) order."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / f for f in sorted(filenames) if is_image(f))
    return found


def has_image(class_dir: Path) -> bool:
    """Whether a class folder holds at least one image (stops at the first one: cheap)."""
    for _dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        if any(is_image(f) for f in filenames):
            return True
    return False


def listing_digest(files: list[Path]) -> str:
    """A hash of the file list with sizes and modification times.

    The prepared copy of a folder is named by it, so a folder whose images change gets prepared
    again instead of silently serving the old copy.
    """
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()
