"""A local class-per-subfolder image tree as a TFDS builder (``mnv1_image_folder``).

``tfds.folder_dataset.ImageFolder`` reads the files as they are at every epoch: a corrupt file
stops training hours in, a CMYK JPEG fails in TensorFlow's decoder, and a single tree cannot be
split into train and validation. This builder is the prepared equivalent: it reads every image
once with Pillow when the dataset is prepared into ``data_dir``, so

* an unreadable image is found before training, and named (``data.skip_bad_images=false``), or
  skipped and counted (``true``; the count is stored in the dataset's metadata and the
  fingerprint);
* JPEG and PNG files in RGB or grayscale are stored as they are (TensorFlow decodes them to RGB);
  anything else (CMYK, palette, alpha, 16-bit, BMP, GIF, WebP, TIFF) is converted to RGB and
  stored as PNG, so every stored example decodes to three channels;
* one tree is split into train and validation by ``data.val_fraction`` per class, with a fixed
  seed, so every run on the folder evaluates on the same held-out images.

The layouts are described in ``mnv1.data.folder_layout``. Each prepared copy is a builder config
named after the folder and a hash of its file listing (names, sizes, modification times) and the
split settings, so a changed folder is prepared again rather than read stale.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from mnv1.config import DataConfig
from mnv1.data import folder_layout
from mnv1.data.errors import DataError
from mnv1.data.locate import expand

log = logging.getLogger(__name__)

DATASET_VERSION = "1.0.0"
SPLIT_SEED = 0  # fixed: the held-out images must not change with the training seed
# Formats TensorFlow's decoder turns into 3-channel RGB unaided.
PASS_THROUGH: frozenset[tuple[str, str]] = frozenset(
    {("JPEG", "RGB"), ("JPEG", "L"), ("PNG", "RGB"), ("PNG", "L")}
)
MAX_LISTED_BAD = 20  # skipped file names kept in the metadata (the count is always exact)


def config_name(cfg: DataConfig) -> str:
    """``<folder name>_<12 hex digits>``: the folder plus everything that changes the examples."""
    root = expand(str(cfg.path)).resolve()
    layout = folder_layout.detect(root)
    files: list[Path] = []
    for tree in (layout.train_dir, layout.val_dir):
        if tree is not None:
            for c in layout.classes:
                files += folder_layout.images_in(tree / c)
    h = hashlib.sha256(folder_layout.listing_digest(files).encode())
    h.update(f"{root}|{cfg.val_fraction}|{cfg.skip_bad_images}|{SPLIT_SEED}".encode())
    slug = re.sub(r"[^a-z0-9]+", "_", root.name.lower()).strip("_")[:40] or "root"
    return f"{slug}_{h.hexdigest()[:12]}"


@dataclasses.dataclass(eq=False)
class FolderBuilderConfig(tfds.core.BuilderConfig):
    path: str = ""
    val_fraction: float = 0.1
    skip_bad_images: bool = False

    @classmethod
    def from_config(cls, cfg: DataConfig) -> FolderBuilderConfig:
        return cls(
            name=config_name(cfg),
            version=DATASET_VERSION,
            description=f"Images from {cfg.path}",
            path=str(expand(str(cfg.path)).resolve()),
            val_fraction=cfg.val_fraction,
            skip_bad_images=cfg.skip_bad_images,
        )


def load_image(path: Path) -> bytes:
    """The bytes to store for one image file; raises ``OSError``/``ValueError`` if unreadable."""
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        image.load()  # decode every pixel: a truncated file fails here, not during training
        if (image.format, image.mode) in PASS_THROUGH:
            return data
        rgb = image.convert("RGB")
    out = io.BytesIO()
    rgb.save(out, format="PNG")
    return out.getvalue()


def _split_tree(
    files_per_class: list[list[Path]], val_fraction: float
) -> tuple[list[tuple[Path, int]], list[tuple[Path, int]]]:
    """Hold out ``val_fraction`` of every class (at least one image when a class has two)."""
    rng = np.random.default_rng(SPLIT_SEED)
    train: list[tuple[Path, int]] = []
    val: list[tuple[Path, int]] = []
    for label, files in enumerate(files_per_class):
        order = rng.permutation(len(files))
        n_val = round(len(files) * val_fraction)
        # A class with one image keeps it for training; otherwise both splits get at least one.
        n_val = min(max(n_val, 1), len(files) - 1) if len(files) >= 2 else 0
        held = set(order[:n_val].tolist())
        for i, f in enumerate(files):
            (val if i in held else train).append((f, label))
    return train, val


class Mnv1ImageFolder(tfds.core.GeneratorBasedBuilder):  # registered as "mnv1_image_folder"
    """Images from a local class-per-subfolder tree."""

    VERSION = tfds.core.Version(DATASET_VERSION)
    RELEASE_NOTES = {DATASET_VERSION: "First release."}  # noqa: RUF012 (TFDS reads a class attribute)

    @property
    def _cfg(self) -> FolderBuilderConfig:
        cfg = self.builder_config
        assert isinstance(cfg, FolderBuilderConfig)
        return cfg

    @property
    def _layout(self) -> folder_layout.FolderLayout:
        return folder_layout.detect(Path(self._cfg.path))

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    # No encoding_format: JPEG and PNG bytes are stored as they are.
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(names=list(self._layout.classes)),
                    "file_name": tfds.features.Text(),
                }
            ),
            supervised_keys=("image", "label"),
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager: Any) -> dict[str, Any]:
        layout = self._layout
        per_class = [folder_layout.images_in(layout.train_dir / c) for c in layout.classes]
        if layout.val_dir is None:
            train, val = _split_tree(per_class, self._cfg.val_fraction)
        else:
            train = [(f, label) for label, files in enumerate(per_class) for f in files]
            val = [
                (f, label)
                for label, c in enumerate(layout.classes)
                if (layout.val_dir / c).is_dir()
                for f in folder_layout.images_in(layout.val_dir / c)
            ]
        self.info.metadata["skipped_images"] = 0
        self.info.metadata["skipped_files"] = []
        return {
            "train": self._generate_examples(train),
            "validation": self._generate_examples(val),
        }

    def _generate_examples(
        self, items: list[tuple[Path, int]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        root = Path(self._cfg.path)
        for path, label in items:
            try:
                image = load_image(path)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
                if not self._cfg.skip_bad_images:
                    raise DataError(
                        f"data.path={self._cfg.path!r}: image file {str(path)!r} cannot be "
                        f"read ({type(err).__name__}: {err}); fix or remove it, or set "
                        "data.skip_bad_images=true to skip unreadable images"
                    ) from err
                self._skip(path, err)
                continue
            name = str(path.relative_to(root))
            yield name, {"image": image, "label": label, "file_name": name}

    def _skip(self, path: Path, err: Exception) -> None:
        meta = self.info.metadata
        meta["skipped_images"] += 1
        if len(meta["skipped_files"]) < MAX_LISTED_BAD:
            meta["skipped_files"].append(str(path))
        log.warning("skipping unreadable image %s (%s: %s)", path, type(err).__name__, err)


def builder(cfg: DataConfig, data_dir: str) -> Mnv1ImageFolder:
    return Mnv1ImageFolder(config=FolderBuilderConfig.from_config(cfg), data_dir=data_dir)
