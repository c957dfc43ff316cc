"""Prepare a dataset into ``data.data_dir`` once: idempotent, concurrency-safe, offline-safe.

* **Idempotent**: a prepared dataset (its version directory holds ``dataset_info.json``) is
  reused without opening a lock.
* **Concurrent**: preparing happens under a file lock in ``data_dir``; a process that waited
  for the lock finds the dataset prepared and reuses it. (The sweep prepares once before fanning
  out, but two sweeps or two single runs may still start together.)
* **Offline-safe**: a named TFDS dataset is built only when ``data.download=true`` or its files
  are in ``data.manual_dir``. Otherwise ``prepare`` raises ``DataError`` before TensorFlow
  Datasets is even asked, instead of TFDS retrying a download for minutes. A failed preparation
  removes the directories it created, so the next try starts clean.
* The synthetic set and local folders never download; they are built whenever missing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import filelock

from mnv1.config import DataConfig
from mnv1.data import builders, check, locate
from mnv1.data.errors import DataError
from mnv1.data.types import Fingerprint

log = logging.getLogger(__name__)


def _raise_problems(cfg: DataConfig) -> None:
    found = check.problems(cfg)
    if found:
        raise DataError("\n".join(found))


def _may_build(cfg: DataConfig) -> bool:
    if cfg.source != "tfds":
        return True
    if locate.manual_files(cfg.name):
        return not locate.missing_manual_files(cfg.name, cfg.manual_dir)
    return cfg.download or locate.manual_dir_has_files(cfg.manual_dir)


def lock_path(builder: Any, data_dir: Path) -> Path:
    return data_dir / f".mnv1-{builders.display_name(builder).replace('/', '-')}.lock"


def _created_dirs(builder: Any, data_dir: Path) -> list[Path]:
    """The directories preparing may create, deepest first."""
    data_path = Path(os.fspath(builder.data_path))
    chain = [p for p in data_path.parents if p == data_dir or data_dir in p.parents]
    return [data_dir / "downloads" / "extracted", data_dir / "downloads", *chain]


def _remove_new_dirs(candidates: list[Path], existed: set[Path], lock: Path) -> None:
    """Remove the now-empty directories that did not exist before a failed preparation.

    TFDS deletes its own ``incomplete.*`` directory on failure; only empty directories are
    removed here, so another dataset being prepared beside this one is never touched.
    """
    for d in candidates:
        if d in existed or not d.is_dir():
            continue
        if d == lock.parent:
            lock.unlink(missing_ok=True)
        try:
            d.rmdir()
        except OSError:  # not empty: something else lives there now
            log.debug("left %s in place: not empty", d)


def _download_config(cfg: DataConfig) -> Any:
    import tensorflow_datasets as tfds

    return tfds.download.DownloadConfig(
        manual_dir=str(locate.expand(cfg.manual_dir)) if cfg.manual_dir else None,
        # Never fetch a pre-built copy from Google's bucket: it is a network call even for a
        # dataset that is otherwise built from local files.
        try_download_gcs=False,
    )


def _unwrap_data_error(err: BaseException) -> DataError | None:
    """A ``DataError`` raised inside a builder, even when TFDS re-raised it wrapped."""
    seen: BaseException | None = err
    while seen is not None:
        if isinstance(seen, DataError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def prepare(cfg: DataConfig) -> Fingerprint:
    """Make sure the dataset of ``cfg`` is prepared in ``data_dir``; return its fingerprint."""
    return builders.fingerprint(prepared_builder(cfg), cfg)


def prepared_builder(cfg: DataConfig) -> Any:
    """``prepare``, returning the TFDS builder of the prepared dataset."""
    _raise_problems(cfg)
    builder = builders.make_builder(cfg)
    if builders.is_prepared(builder):
        return builder
    if not _may_build(cfg):
        # The pure-Python check saw another config or version prepared; this one is not.
        raise DataError(check.not_prepared_message(cfg))
    _prepare_locked(builder, cfg)
    return builders.make_builder(cfg)  # a fresh builder reads the prepared dataset's info


def _prepare_locked(builder: Any, cfg: DataConfig) -> None:
    data_dir = locate.expand(cfg.data_dir)
    candidates = [*_created_dirs(builder, data_dir), data_dir, *data_dir.parents]
    existed = {d for d in candidates if d.is_dir()}
    lock = lock_path(builder, data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(str(lock)):
            if builders.is_prepared(builder):
                log.info(
                    "%s: prepared by another process meanwhile", builders.display_name(builder)
                )
                return
            log.info("preparing %s into %s", builders.display_name(builder), data_dir)
            builder.download_and_prepare(download_config=_download_config(cfg))
    except BaseException as err:
        _remove_new_dirs(candidates, existed, lock)
        wrapped = _unwrap_data_error(err)
        if wrapped is not None and wrapped is not err:
            raise wrapped from err
        raise
