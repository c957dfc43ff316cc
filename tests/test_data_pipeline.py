"""``load_datasets`` on the synthetic set: batches, ranges, reproducibility, caching."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from mnv1.config import DataConfig, SyntheticConfig
from mnv1.data.errors import DataError
from mnv1.data.pipeline import fill_cache, load_datasets

TINY = SyntheticConfig(train_size=40, val_size=20, image_size=64)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tfds")


def _cfg(data_dir: Path, **kw) -> DataConfig:
    return DataConfig(data_dir=str(data_dir), synthetic=TINY, **kw)


def _arrays(ds) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_batches_shapes_dtypes_and_ranges(data_dir: Path) -> None:
    data = load_datasets(_cfg(data_dir), resolution=48, global_batch=16, seed=1)
    assert (data.train_examples, data.val_examples, data.num_classes) == (40, 20, 10)
    assert data.fingerprint.splits == {"train": 40, "validation": 20}
    train = _arrays(data.train)
    assert [x.shape for x, _ in train] == [(16, 48, 48, 3)] * 2  # 40 // 16: remainder dropped
    val = _arrays(data.val)
    assert [x.shape[0] for x, _ in val] == [16, 4]  # every example once, last batch short
    for x, y in train + val:
        assert x.dtype == np.float32 and y.dtype == np.int32
        assert x.min() >= -1.0 and x.max() <= 1.0
        assert set(y.tolist()) <= set(range(10))
    assert sorted(np.concatenate([y for _, y in val]).tolist()) == sorted(list(range(10)) * 2)


def test_same_seed_same_batches_and_each_pass_differs(data_dir: Path) -> None:
    a = load_datasets(_cfg(data_dir), resolution=32, global_batch=8, seed=7)
    b = load_datasets(_cfg(data_dir), resolution=32, global_batch=8, seed=7)
    c = load_datasets(_cfg(data_dir), resolution=32, global_batch=8, seed=8)
    first, again, other = _arrays(a.train), _arrays(b.train), _arrays(c.train)
    assert all(
        np.array_equal(x1, x2) and np.array_equal(y1, y2)
        for (x1, y1), (x2, y2) in zip(first, again, strict=True)
    )
    assert not np.array_equal(first[0][0], other[0][0])
    second_pass = _arrays(a.train)  # a new pass: reshuffled, new crops
    assert not np.array_equal(first[0][0], second_pass[0][0])


def test_cache_does_not_change_the_data(data_dir: Path) -> None:
    cached = load_datasets(_cfg(data_dir, cache=True), resolution=32, global_batch=8)
    uncached = load_datasets(_cfg(data_dir, cache=False), resolution=32, global_batch=8)
    for (x1, y1), (x2, y2) in zip(_arrays(cached.val), _arrays(uncached.val), strict=True):
        assert np.array_equal(x1, x2) and np.array_equal(y1, y2)
    for (x1, y1), (x2, y2) in zip(_arrays(cached.train), _arrays(uncached.train), strict=True):
        assert np.array_equal(x1, x2) and np.array_equal(y1, y2)


def test_caches_are_complete_before_any_consumer_reads(tmp_path: Path) -> None:
    """Regression: a cell once evaluated 22 of its 32 validation images.

    tf.data filled the in-memory caches lazily, through whichever iterator came first, and an
    iterator dropped part-way through that pass (Keras drops one in every ``evaluate`` after
    reading one batch) could complete the cache with the prefix it had read. The caches are now
    filled when the pipelines are built: with the prepared files gone, both splits still come
    whole out of memory, however many partly read iterators came and went.
    """
    own = tmp_path / "tfds"
    data = load_datasets(_cfg(own, max_val_examples=13), resolution=32, global_batch=8)
    for ds in (data.val, data.train, data.val):
        next(iter(ds))  # what Keras does to build the model: one batch, then drop the iterator
    shutil.rmtree(own)  # from here on, only the caches can serve examples
    for _ in range(2):
        assert [x.shape[0] for x, _ in _arrays(data.val)] == [8, 5]
        assert [x.shape[0] for x, _ in _arrays(data.train)] == [8] * 5


def test_a_run_that_reads_the_training_split_once_does_not_cache_it(tmp_path: Path) -> None:
    """Filling a cache decodes the whole split up front: only worth it when a run rereads it."""
    once, twice = tmp_path / "once", tmp_path / "twice"
    # The split holds 40 images: 24 are read once, 48 mean a second pass.
    short = load_datasets(_cfg(once), resolution=32, global_batch=8, train_images=24)
    long = load_datasets(_cfg(twice), resolution=32, global_batch=8, train_images=48)
    shutil.rmtree(once)
    shutil.rmtree(twice)
    assert [x.shape[0] for x, _ in _arrays(long.train)] == [8] * 5  # served from memory
    assert [x.shape[0] for x, _ in _arrays(short.val)] == [8, 8, 4]  # validation: still cached
    with pytest.raises(tf.errors.NotFoundError):  # read from the (deleted) prepared files
        next(iter(short.train))


def test_filling_a_cache_checks_the_example_count() -> None:
    short = tf.data.Dataset.range(5).cache()
    with pytest.raises(DataError, match="validation split yielded 5 examples, its metadata says 6"):
        fill_cache(short, 6, "validation")
    assert fill_cache(tf.data.Dataset.range(6).cache(), 6, "validation") is not None


def test_max_val_examples(data_dir: Path) -> None:
    data = load_datasets(_cfg(data_dir, max_val_examples=5), resolution=32, global_batch=4)
    assert data.val_examples == 5
    assert [x.shape[0] for x, _ in _arrays(data.val)] == [4, 1]


def _pass_signature(ds) -> list[float]:
    """Per-image pixel sums of one pass, sorted: equal for two passes iff same images."""
    return sorted(float(img.sum()) for x, _ in _arrays(ds) for img in x)


def test_augment_false_only_shuffles(data_dir: Path) -> None:
    plain = load_datasets(_cfg(data_dir), resolution=32, global_batch=8, augment=False)
    assert _pass_signature(plain.train) == pytest.approx(_pass_signature(plain.train))
    augmented = load_datasets(_cfg(data_dir), resolution=32, global_batch=8, augment=True)
    assert _pass_signature(augmented.train) != pytest.approx(_pass_signature(augmented.train))


def test_bad_arguments_name_the_key(data_dir: Path) -> None:
    with pytest.raises(DataError, match=r"train\.batch_size=41 exceeds the 40 training"):
        load_datasets(_cfg(data_dir), resolution=32, global_batch=41)
    with pytest.raises(ValueError, match=r"model\.resolution=0"):
        load_datasets(_cfg(data_dir), resolution=0, global_batch=4)
    with pytest.raises(ValueError, match=r"train\.batch_size=0"):
        load_datasets(_cfg(data_dir), resolution=32, global_batch=0)
    with pytest.raises(DataError, match=r"data\.augment='heavy'"):
        load_datasets(_cfg(data_dir, augment="heavy"), resolution=32, global_batch=4)
