"""How many examples a run reads per epoch, known before any example is: for the sweep's plan.

A prepared dataset's split sizes are TFDS's own metadata (``dataset_info.json`` in its version
directory), read through its builder without opening a record. An unprepared one has none on
this machine: the TFDS package ships no split sizes (it fetches a builder's published info from
its servers only when asked, and the plan never goes online), so the sizes of the dataset the
paper's studies train on are kept in ``PUBLISHED`` below. Either way the counts go through
``mnv1.data.builders.resolve_splits``, the function a run uses, so the plan's validation tail,
held-out share and slices are the run's own.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mnv1.config import DataConfig
from mnv1.data import locate
from mnv1.data.errors import DataError

# Example counts as the TFDS catalog publishes them for its builders (every released version of
# imagenet2012): ILSVRC 2012's 1,281,167 training and 50,000 validation images.
PUBLISHED: dict[str, dict[str, int]] = {
    "imagenet2012": {"train": 1_281_167, "validation": 50_000},
}

_FOUND: dict[str, tuple[int, int] | None] = {}


def published_builder(name: str) -> Any | None:
    """A stand-in with a builder's ``info.splits[...].num_examples`` for a ``PUBLISHED``
    dataset (no config or version pinned beyond the dataset's), else None."""
    parsed = locate.parse_tfds_name(name)
    if parsed is None or parsed.config is not None or parsed.dataset not in PUBLISHED:
        return None
    splits = {k: SimpleNamespace(num_examples=n) for k, n in PUBLISHED[parsed.dataset].items()}
    return SimpleNamespace(info=SimpleNamespace(splits=splits), name=name, builder_config=None)


def _builder(cfg: DataConfig) -> Any | None:
    from mnv1.data.builders import is_prepared, make_builder

    if cfg.source == "tfds" and locate.prepared_dir(cfg.data_dir, cfg.name) is None:
        return published_builder(cfg.name)
    try:
        builder = make_builder(cfg)
    except (DataError, OSError):
        return None
    if is_prepared(builder):
        return builder
    return published_builder(cfg.name) if cfg.source == "tfds" else None


def epoch_sizes(cfg: DataConfig) -> tuple[int, int] | None:
    """(training, validation) examples one epoch of a run of ``cfg`` reads, before
    ``data.max_val_examples``; None when neither a prepared copy nor ``PUBLISHED`` knows them
    (or the config asks for a split the dataset does not have: the run will say which)."""
    # A grid's cells share one dataset: build its builder once per plan, and again once the
    # dataset has been prepared (its version directory is part of the key).
    prepared = locate.prepared_dir(cfg.data_dir, cfg.name) if cfg.source == "tfds" else None
    key = f"{cfg!r} {prepared}"
    if key not in _FOUND:
        _FOUND[key] = _sizes(cfg)
    return _FOUND[key]


def _sizes(cfg: DataConfig) -> tuple[int, int] | None:
    builder = _builder(cfg)
    if builder is None:
        return None
    from mnv1.data.builders import resolve_splits

    try:
        splits = resolve_splits(builder, cfg)
    except (DataError, KeyError):
        return None
    return splits.train_examples, splits.val_examples
