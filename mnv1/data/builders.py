"""From a ``DataConfig`` to a TFDS builder, its split names and its fingerprint.

Every source is a TFDS builder: the embedded synthetic set (``mnv1.data.synthetic``), a local
folder (``mnv1.data.folder``) or any catalog dataset by name. Constructing a builder reads only
local files (TFDS 4.9.10 keeps its GCS lookups off unless asked), so this never touches the
network; downloads happen only in ``mnv1.data.prepare``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

import tensorflow_datasets as tfds

from mnv1.config import DataConfig
from mnv1.data import folder, locate, synthetic
from mnv1.data.errors import DataError
from mnv1.data.types import Fingerprint

log = logging.getLogger(__name__)


class _QuietOwnConfigs(logging.Filter):
    """Drop TFDS's "Using custom data configuration" warning for this project's builders.

    Their configs are named from their parameters (every synthetic size, every folder), so they
    are always "custom" and the warning, printed on every construction, says nothing.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.startswith("Using custom data configuration")
            and ("SyntheticBuilderConfig(" in message or "FolderBuilderConfig(" in message)
        )


logging.getLogger("absl").addFilter(_QuietOwnConfigs())


def make_builder(cfg: DataConfig) -> Any:
    """The TFDS builder for ``cfg`` (prepared or not)."""
    data_dir = str(locate.expand(cfg.data_dir))  # TFDS would create a directory named "~"
    if cfg.source == "synthetic":
        return synthetic.builder(cfg.synthetic, data_dir)
    if cfg.source == "folder":
        return folder.builder(cfg, data_dir)
    try:
        return tfds.builder(cfg.name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        raise DataError(
            f"data.name={cfg.name!r} is not a dataset TFDS {tfds.__version__} knows: "
            f"{str(err).splitlines()[0]} (see https://www.tensorflow.org/datasets/catalog)"
        ) from err
    except ValueError as err:  # unknown config or version of a known dataset
        raise DataError(f"data.name={cfg.name!r}: {err}") from err


def is_prepared(builder: Any) -> bool:
    return bool((builder.data_path / "dataset_info.json").exists())


def display_name(builder: Any) -> str:
    config = builder.builder_config
    return f"{builder.name}/{config.name}" if config is not None else builder.name


@dataclass(frozen=True)
class Splits:
    """The split expressions a run reads and how many examples each holds."""

    train: str
    val: str
    train_examples: int
    val_examples: int


def _num_examples(builder: Any, split: str, key: str) -> int:
    try:
        return int(builder.info.splits[split].num_examples)
    except (KeyError, ValueError) as err:
        available = ", ".join(sorted(builder.info.splits.keys())) or "none"
        raise DataError(
            f"{key}={split!r} is not a split of {display_name(builder)} (it has: {available})"
        ) from err


def resolve_splits(builder: Any, cfg: DataConfig) -> Splits:
    """Train and validation splits of a prepared builder, with ``data.holdout_percent`` applied:
    the last N% of the training examples become the "validation" split and the first (100 - N)%
    the training split, so the dataset's own validation split is never read."""
    splits = _dataset_splits(builder, cfg)
    if cfg.holdout_percent is None:
        return splits
    match = re.fullmatch(r"([\w.-]+)(?:\[:(\d+)\])?", splits.train)
    if match is None:
        raise DataError(
            f"data.holdout_percent={cfg.holdout_percent} needs data.train_split to be a split "
            f"name, got the slice {splits.train!r}"
        )
    name, end = match.group(1), int(match.group(2) or splits.train_examples)
    held = round(splits.train_examples * cfg.holdout_percent / 100)
    if held < 1 or held >= splits.train_examples:
        raise DataError(
            f"data.holdout_percent={cfg.holdout_percent} of {splits.train_examples} training "
            f"examples of {display_name(builder)} leaves {held} to score on and "
            f"{splits.train_examples - held} to train on; both need at least one"
        )
    # Absolute indices, not percents: the training portion may itself be a slice (the tail of a
    # split given to validation by data.val_fraction), and the held-out slice must end with it.
    cut = end - held
    return Splits(f"{name}[:{cut}]", f"{name}[{cut}:{end}]", cut, held)


def _dataset_splits(builder: Any, cfg: DataConfig) -> Splits:
    """Train and validation splits of a prepared builder.

    A dataset without the configured validation split (``tf_flowers`` has only ``train``;
    ``cifar10`` has ``train`` and ``test``) gives its last ``data.val_fraction`` of the training
    split to validation. TFDS shuffles examples when it prepares a dataset, so the tail is a
    random sample, and the same one in every run.
    """
    if cfg.source != "tfds":
        return Splits(
            "train",
            "validation",
            _num_examples(builder, "train", "data.train_split"),
            _num_examples(builder, "validation", "data.val_split"),
        )
    n_train = _num_examples(builder, cfg.train_split, "data.train_split")
    if cfg.val_split.split("[")[0] in builder.info.splits:
        return Splits(
            cfg.train_split,
            cfg.val_split,
            n_train,
            _num_examples(builder, cfg.val_split, "data.val_split"),
        )
    if "[" in cfg.train_split:
        raise DataError(
            f"data.val_split={cfg.val_split!r} is not a split of {display_name(builder)}, and "
            f"data.train_split={cfg.train_split!r} is already a slice: name an existing "
            f"validation split (it has: {', '.join(sorted(builder.info.splits.keys()))})"
        )
    n_val = min(max(1, round(n_train * cfg.val_fraction)), n_train - 1)
    if n_val < 1:
        raise DataError(
            f"data.train_split={cfg.train_split!r} of {display_name(builder)} has {n_train} "
            "example(s): too few to hold out a validation split"
        )
    log.info(
        "%s has no split %r: holding out the last %d of %d %r examples (data.val_fraction=%s)",
        display_name(builder),
        cfg.val_split,
        n_val,
        n_train,
        cfg.train_split,
        cfg.val_fraction,
    )
    cut = n_train - n_val
    return Splits(f"{cfg.train_split}[:{cut}]", f"{cfg.train_split}[{cut}:]", cut, n_val)


def supervised_keys(builder: Any) -> tuple[str, str]:
    """The (image, label) feature names, checked to be an image and a class label."""
    keys = builder.info.supervised_keys
    if not keys or len(keys) != 2 or not all(isinstance(k, str) for k in keys):
        raise DataError(
            f"data.name={display_name(builder)!r} has no (image, label) supervised keys "
            f"({keys!r}): only image classification datasets can train MobileNetV1"
        )
    image_key, label_key = keys
    features = builder.info.features
    if not isinstance(features[image_key], tfds.features.Image):
        raise DataError(
            f"data.name={display_name(builder)!r}: feature {image_key!r} is "
            f"{type(features[image_key]).__name__}, not an image"
        )
    if not isinstance(features[label_key], tfds.features.ClassLabel):
        raise DataError(
            f"data.name={display_name(builder)!r}: feature {label_key!r} is "
            f"{type(features[label_key]).__name__}, not a class label"
        )
    return image_key, label_key


def num_classes(builder: Any) -> int:
    return int(builder.info.features[supervised_keys(builder)[1]].num_classes)


def skipped_images(builder: Any) -> int:
    metadata = builder.info.metadata
    return int(metadata.get("skipped_images", 0)) if metadata is not None else 0


def fingerprint(builder: Any, cfg: DataConfig) -> Fingerprint:
    splits = resolve_splits(builder, cfg)
    return Fingerprint(
        name=display_name(builder),
        version=str(builder.version),
        splits={"train": splits.train_examples, "validation": splits.val_examples},
        num_classes=num_classes(builder),
        skipped_images=skipped_images(builder),
    )
