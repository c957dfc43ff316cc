"""Preflight: before a run or sweep spends anything, is the data there and usable?

``preflight`` makes sure the dataset is prepared (building it where that needs no permission:
the synthetic set, a local folder, a named dataset with ``data.download=true`` or its files in
``data.manual_dir``), then checks that it has at least two classes, non-empty train and
validation splits, and examples that decode to RGB images. Everything it finds wrong is a
``DataError`` that says what to do. It returns the fingerprint a run logs with its results.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf
import tensorflow_datasets as tfds

from mnv1.config import DataConfig
from mnv1.data import builders, preprocess
from mnv1.data.errors import DataError
from mnv1.data.prepare import prepared_builder
from mnv1.data.types import Fingerprint

SAMPLES_PER_SPLIT = 2  # decoded per split: catches a broken encoding without reading much


def preflight(cfg: DataConfig) -> Fingerprint:
    return checked_builder(cfg)[1]


def checked_builder(cfg: DataConfig) -> tuple[Any, Fingerprint]:
    """``preflight``, returning the prepared TFDS builder with the fingerprint."""
    builder = prepared_builder(cfg)
    fingerprint = builders.fingerprint(builder, cfg)
    name = builders.display_name(builder)
    if fingerprint.num_classes < 2:
        raise DataError(
            f"{name} has {fingerprint.num_classes} class(es): classification needs at least 2"
        )
    splits = builders.resolve_splits(builder, cfg)
    image_key, _ = builders.supervised_keys(builder)  # raises unless (image, class label)
    for role, split, count in (
        ("data.train_split", splits.train, splits.train_examples),
        ("data.val_split", splits.val, splits.val_examples),
    ):
        if count < 1:
            raise DataError(f"{role}: split {split!r} of {name} has no examples")
        records = builder.as_dataset(
            split=split,
            shuffle_files=False,
            decoders={image_key: tfds.decode.SkipDecoding()},
        ).take(SAMPLES_PER_SPLIT)
        try:
            for example in records:
                image = preprocess.decode_image(example[image_key])
                if int(tf.size(image)) == 0:
                    raise DataError(f"{role}: split {split!r} of {name} holds an empty image")
        except tf.errors.OpError as err:
            raise DataError(
                f"{role}: examples of split {split!r} of {name} do not decode as images "
                f"({err.message}); prepare the dataset again (delete its directory under "
                f"data.data_dir={cfg.data_dir!r})"
            ) from err
    return builder, fingerprint
