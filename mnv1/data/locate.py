"""Where datasets live on disk and what a manual download needs: pure Python, no TensorFlow.

TFDS keeps a prepared dataset in ``data_dir/<name>[/<config>]/<version>/`` and writes
``dataset_info.json`` into that directory last, so its presence means "prepared".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SYNTHETIC_NAME = "mnv1_synthetic"

_NAME = re.compile(
    r"^(?P<dataset>[a-z][a-z0-9_]*)(?:/(?P<config>[\w.\-]+))?(?::(?P<version>\d+\.\d+\.\d+))?$"
)
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")

IMAGENET_FILES: tuple[str, ...] = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")
# Datasets TFDS cannot download: the files their builders read from ``manual_dir``.
MANUAL_FILES: dict[str, tuple[str, ...]] = {
    "imagenet2012": IMAGENET_FILES,
    "imagenet2012_subset": IMAGENET_FILES,
}
IMAGENET_URL = "https://image-net.org/download-images"


@dataclass(frozen=True)
class TfdsName:
    dataset: str
    config: str | None
    version: str | None


def parse_tfds_name(name: str) -> TfdsName | None:
    """``name``, ``name/config``, ``name:1.2.3`` or ``name/config:1.2.3``; None if malformed."""
    m = _NAME.match(name)
    if m is None:
        return None
    return TfdsName(m["dataset"], m["config"], m["version"])


def expand(path: str) -> Path:
    return Path(path).expanduser()


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in name.split("."))


def prepared_dir(data_dir: str, name: str) -> Path | None:
    """The newest prepared version directory of a TFDS dataset under ``data_dir``, or None.

    Without a config in ``name`` any config counts (pure Python cannot know a builder's default
    config); the TFDS-side check in ``mnv1.data.prepare`` is exact.
    """
    parsed = parse_tfds_name(name)
    if parsed is None:
        return None
    root = expand(data_dir) / parsed.dataset
    parents = [root / parsed.config] if parsed.config else [root]
    if not parsed.config and root.is_dir():
        parents += sorted(p for p in root.iterdir() if p.is_dir())
    found = [
        d
        for parent in parents
        if parent.is_dir()
        for d in parent.iterdir()
        if _VERSION.match(d.name)
        and (parsed.version is None or d.name == parsed.version)
        and (d / "dataset_info.json").is_file()
    ]
    return max(found, key=lambda d: _version_key(d.name)) if found else None


def manual_files(name: str) -> tuple[str, ...]:
    """The files a manual-download dataset needs in ``manual_dir`` (empty: not known here)."""
    parsed = parse_tfds_name(name)
    return MANUAL_FILES.get(parsed.dataset, ()) if parsed else ()


def missing_manual_files(name: str, manual_dir: str | None) -> tuple[str, ...]:
    """Which of ``manual_files(name)`` are not in ``manual_dir``."""
    needed = manual_files(name)
    if manual_dir is None:
        return needed
    where = expand(manual_dir)
    return tuple(f for f in needed if not (where / f).is_file())


def manual_dir_has_files(manual_dir: str | None) -> bool:
    if manual_dir is None:
        return False
    where = expand(manual_dir)
    return where.is_dir() and any(where.iterdir())


SHOWN_ENTRIES = 5  # a directory's entries named in a message; the rest are counted


def describe_dir(path: str) -> str:
    """What a directory the user gave holds, for a message: ``no such directory``, ``not a
    directory``, ``the directory is empty`` or ``it holds a.tar, b.txt and 3 more``."""
    where = expand(path)
    if not where.exists():
        return "no such directory"
    if not where.is_dir():
        return "not a directory"
    try:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in where.iterdir())
    except OSError as err:
        return f"cannot be listed: {err.strerror or err}"
    if not names:
        return "the directory is empty"
    shown = ", ".join(names[:SHOWN_ENTRIES])
    more = len(names) - SHOWN_ENTRIES
    return f"it holds {shown}" + (f" and {more} more" if more > 0 else "")
