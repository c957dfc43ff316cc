"""``tf.data`` input pipelines at one resolution: what the trainer fits on.

Per split: TFDS records (image bytes undecoded) → parallel decode (AUTOTUNE) → in-memory cache
of the decoded uint8 images (``data.cache``, when they fit) → [train: shuffle, stateless random
augmentation] → per-image preprocessing at ρ (AUTOTUNE) → batch → prefetch.

* Training batches hold exactly the global batch (remainder dropped), so a distribution strategy
  splits every batch evenly across replicas. The dataset is one pass; the trainer repeats it.
  Each pass reshuffles and draws fresh augmentations, reproducibly from ``seed``.
* Validation yields every example once (or the first ``data.max_val_examples``), last batch
  possibly short, through the central-crop transform.
* Caching happens before augmentation, so every epoch still sees new crops. Decoded images are
  cached shrunk to near ρ (shorter side ρ / 0.875: ``preprocess.near_resolution``), so each
  epoch's crop and resize cost follows ρ rather than the dataset's native size; an uncached
  split is shrunk the same way as it is read, so whether a split is cached never changes the
  data. Decoded images
  that would take more than half the free memory are not cached; the encoded records are cached
  instead when those fit, and otherwise nothing is (with a log line saying which).
* A cache is filled here, by one complete pass, before any consumer sees the dataset (see
  ``fill_cache``): a cache that its consumers fill lazily can end up holding part of a split.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import psutil
import tensorflow as tf
import tensorflow_datasets as tfds

from mnv1.config import DataConfig
from mnv1.data import builders, preprocess
from mnv1.data.errors import DataError
from mnv1.data.inputs import data_inputs
from mnv1.data.preflight import checked_builder
from mnv1.data.types import Datasets

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
SHUFFLE_BUFFER = 10_000  # examples; a full shuffle for the synthetic set, a window for ImageNet
CACHE_MEMORY_FRACTION = 0.5  # of the memory available when the pipeline is built
JPEG_EXPANSION = 10.0  # decoded / encoded bytes, to estimate images of unknown size


def _decoded_bytes(builder: Any, image_key: str, examples: int) -> float:
    shape = builder.info.features[image_key].shape
    if shape[0] is not None and shape[1] is not None:
        return float(examples * shape[0] * shape[1] * 3)
    total = sum(s.num_examples for s in builder.info.splits.values()) or 1
    return float(builder.info.dataset_size) / total * examples * JPEG_EXPANSION


def _encoded_bytes(builder: Any, examples: int) -> float:
    total = sum(s.num_examples for s in builder.info.splits.values()) or 1
    return float(builder.info.dataset_size) / total * examples


def cache_level(cfg: DataConfig, builder: Any, image_key: str, examples: int) -> str:
    """``decoded``, ``encoded`` or ``none``: what of one split is cached in memory."""
    if not cfg.cache:
        return "none"
    budget = psutil.virtual_memory().available * CACHE_MEMORY_FRACTION
    if _decoded_bytes(builder, image_key, examples) <= budget:
        return "decoded"
    level = "encoded" if _encoded_bytes(builder, examples) <= budget else "none"
    log.warning(
        "data.cache=true but %d decoded images of %s would not fit in memory: caching %s",
        examples,
        builders.display_name(builder),
        "the encoded records" if level == "encoded" else "nothing",
    )
    return level


def _records(builder: Any, split: str, image_key: str, label_key: str, seed: int, shuffle: bool):
    """``(encoded image, int32 label)`` pairs of one split, undecoded."""
    ds = builder.as_dataset(
        split=split,
        shuffle_files=shuffle,
        decoders={image_key: tfds.decode.SkipDecoding()},
        # We cache (decoded) ourselves; TFDS's auto-cache would hold a second, encoded copy.
        read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False),
    )
    return ds.map(
        lambda ex: (ex[image_key], tf.cast(ex[label_key], tf.int32)),
        num_parallel_calls=AUTOTUNE,
    )


def fill_cache(ds: tf.data.Dataset, examples: int, what: str) -> tf.data.Dataset:
    """Fill the in-memory cache at the end of ``ds`` with one complete pass, now; returns ``ds``.

    ``tf.data`` fills a cache lazily, through whichever iterator reads it first, and shares it
    with every later iterator. An iterator dropped part-way through that first pass cancels its
    inputs, and the cancellation can reach the cache as an end of sequence: the cache then
    completes with only the elements read so far, and every later pass serves that prefix
    (seen here: 20 or 22 of 32 validation images, with TensorFlow's "Finalizing the cache
    because EOF has been reached" logged while the iterator was destroyed). Keras drops such
    iterators in every ``evaluate``/``fit`` (it reads one batch to build the model, and opens
    the next epoch's iterator at the end of each evaluation), and so does the ``take`` of the
    BatchNorm recalibration batches. After one complete pass here, every iterator only reads the
    cache, and dropping a reader never changes it.

    The pass also checks the split: it must hold exactly ``examples`` examples.
    """
    start = time.perf_counter()
    count = int(ds.reduce(np.int64(0), lambda n, *_: n + 1))
    if count != examples:
        raise DataError(
            f"the {what} split yielded {count} examples, its metadata says {examples}: "
            "the prepared dataset is incomplete or changed; prepare it again"
        )
    log.info("cached %d %s examples in %.1f s", count, what, time.perf_counter() - start)
    return ds


def _cached_decoded(
    ds: tf.data.Dataset, level: str, examples: int, what: str, resolution: int
) -> tuple[tf.data.Dataset, bool]:
    """Apply the cache level (the cache filled); returns the dataset and whether its images
    are decoded yet. Decoded images are cached near ``resolution`` (the module docstring)."""
    if level == "decoded":

        def decode_near(encoded: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return preprocess.near_resolution(preprocess.decode_image(encoded), resolution), label

        return fill_cache(
            ds.map(decode_near, num_parallel_calls=AUTOTUNE).cache(), examples, what
        ), True
    if level == "encoded":
        return fill_cache(ds.cache(), examples, what), False
    return ds, False


def _augment_seeds(seed: int) -> tf.data.Dataset:
    """One int64 ``(2, 2)`` seed per example, different on every pass, fixed by ``seed``."""
    return (
        tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        .batch(4)
        .map(lambda s: tf.reshape(s, (2, 2)))
    )


def _check_args(resolution: int, global_batch: int) -> None:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"model.resolution={resolution!r} must be a positive integer")
    if isinstance(global_batch, bool) or not isinstance(global_batch, int) or global_batch < 1:
        raise ValueError(f"train.batch_size={global_batch!r} must be a positive integer")


def load_datasets(
    cfg: DataConfig,
    resolution: int,
    global_batch: int,
    seed: int = 0,
    augment: bool = True,
    train_images: int | None = None,
) -> Datasets:
    """Train and validation pipelines at ``resolution`` with batches of ``global_batch``.

    ``train_images`` is how many training images the run will draw (None: unknown). A cache is
    filled with a full pass before training (see :func:`fill_cache`), so the training split is
    cached only when the run reads it more than once: a short run that sees part of a split
    once would pay a decode of the whole split for nothing (the demo's cells read a third of it).
    """
    _check_args(resolution, global_batch)
    builder, fingerprint = checked_builder(cfg)
    splits = builders.resolve_splits(builder, cfg)
    image_key, label_key = builders.supervised_keys(builder)
    if splits.train_examples < global_batch:
        raise DataError(
            f"train.batch_size={global_batch} exceeds the {splits.train_examples} training "
            f"examples of {fingerprint.name}: not one full batch; lower train.batch_size"
        )
    mode = cfg.augment if augment else "none"

    rereads = train_images is None or train_images > splits.train_examples
    train, decoded = _cached_decoded(
        _records(builder, splits.train, image_key, label_key, seed, shuffle=True),
        cache_level(cfg, builder, image_key, splits.train_examples) if rereads else "none",
        splits.train_examples,
        "training",
        resolution,
    )
    train = train.shuffle(min(SHUFFLE_BUFFER, splits.train_examples), seed=seed)
    train = tf.data.Dataset.zip(train, _augment_seeds(seed))

    def train_fn(pair: tuple[tf.Tensor, tf.Tensor], aug_seed: tf.Tensor):
        image, label = pair
        if not decoded:  # as the cache would have held it, so caching never changes the data
            image = preprocess.near_resolution(preprocess.decode_image(image), resolution)
        return preprocess.train_image(image, resolution, mode, aug_seed), label

    train = (
        train.map(train_fn, num_parallel_calls=AUTOTUNE)
        .batch(global_batch, drop_remainder=True)
        .prefetch(AUTOTUNE)
    )

    val_examples = splits.val_examples
    if cfg.max_val_examples is not None:
        val_examples = min(val_examples, cfg.max_val_examples)
    val = _records(builder, splits.val, image_key, label_key, seed, shuffle=False).take(
        val_examples
    )
    val, val_decoded = _cached_decoded(
        val,
        cache_level(cfg, builder, image_key, val_examples),
        val_examples,
        "validation",
        resolution,
    )

    def val_fn(image: tf.Tensor, label: tf.Tensor):
        if not val_decoded:
            image = preprocess.near_resolution(preprocess.decode_image(image), resolution)
        return preprocess.eval_image(image, resolution), label

    val = val.map(val_fn, num_parallel_calls=AUTOTUNE).batch(global_batch).prefetch(AUTOTUNE)

    return Datasets(
        train=train,
        val=val,
        num_classes=fingerprint.num_classes,
        train_examples=splits.train_examples,
        val_examples=val_examples,
        fingerprint=fingerprint,
        inputs=data_inputs(builder, splits, val_examples, cfg.holdout_percent is not None),
    )
