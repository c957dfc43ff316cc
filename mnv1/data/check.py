"""Is a data config usable? Pure Python: never imports TensorFlow or TFDS.

The config validator calls ``source_problems`` for every cell of a grid before any TensorFlow
process starts, so this module only looks at the config and the file system. Each problem names
the key, the value received and what is allowed or what to do.
"""

from __future__ import annotations

from collections.abc import Collection

from mnv1.config import DataConfig
from mnv1.config import problems as rule_problems
from mnv1.data import folder_layout, locate

# The keys the source checks below read: they run only when these pass their own rules.
SOURCE_KEYS = frozenset(
    {"data.source", "data.name", "data.data_dir", "data.manual_dir", "data.path", "data.download"}
)


def problems(cfg: DataConfig) -> list[str]:
    """Everything wrong with ``cfg``; an empty list means the data can be prepared and loaded.

    The keys' types and bounds come from the rule table (``mnv1.config.RULES``); what this module
    adds is what the file system and TFDS say (``source_problems``).
    """
    found = rule_problems(cfg, "data")
    return [str(p) for p in found] + source_problems(cfg, {p.key for p in found})


def source_problems(cfg: DataConfig, bad_keys: Collection[str] = ()) -> list[str]:
    """Does the dataset exist, and is it prepared or may it be? Skipped when a key it reads
    (``SOURCE_KEYS``) is already reported as bad, so each value is judged once."""
    if SOURCE_KEYS & set(bad_keys):
        return []
    if cfg.source == "synthetic":
        return _synthetic(cfg)
    if cfg.source == "tfds":
        return _tfds(cfg)
    return _folder(cfg)


def _synthetic(cfg: DataConfig) -> list[str]:
    if cfg.name != locate.SYNTHETIC_NAME:
        return [
            f"data.name={cfg.name!r} does not go with data.source='synthetic' (whose dataset is "
            f"{locate.SYNTHETIC_NAME!r}): set data.source=tfds for a TFDS dataset by name"
        ]
    return []


def not_prepared_message(cfg: DataConfig) -> str:
    """What to do when a named TFDS dataset is not prepared and may not be downloaded."""
    missing = locate.missing_manual_files(cfg.name, cfg.manual_dir)
    where = f"data.data_dir={cfg.data_dir!r}"
    if locate.manual_files(cfg.name):
        needed = " and ".join(locate.manual_files(cfg.name))
        if cfg.manual_dir is not None:
            # What the user gave comes first: the directory, what it holds, what it lacks.
            return (
                f"data.manual_dir={cfg.manual_dir!r} lacks {', '.join(missing)} "
                f"({locate.describe_dir(cfg.manual_dir)}): data.name={cfg.name!r} is not "
                f"prepared under {where} and TFDS cannot download it; download {needed} from "
                f"{locate.IMAGENET_URL} (free registration) into that directory; the first run "
                "then prepares it into data.data_dir once"
            )
        return (
            f"data.name={cfg.name!r} is not prepared under {where} and TFDS cannot download it: "
            f"download {needed} from {locate.IMAGENET_URL} (free registration), put both files "
            f"in one directory and set data.manual_dir to it (data.manual_dir is not set); the "
            "first run then prepares it into data.data_dir once"
        )
    if cfg.manual_dir is not None and not locate.manual_dir_has_files(cfg.manual_dir):
        return (
            f"data.manual_dir={cfg.manual_dir!r} holds nothing to prepare from "
            f"({locate.describe_dir(cfg.manual_dir)}): data.name={cfg.name!r} is not prepared "
            f"under {where}; put the dataset's manually downloaded files there, or set "
            "data.download=true on a machine with network"
        )
    return (
        f"data.name={cfg.name!r} is not prepared under {where} and data.download=false: set "
        "data.download=true on a machine with network access (it is prepared once and reused), "
        "copy an already prepared <name>/<version> directory into data.data_dir, or give "
        "data.manual_dir with the files this dataset's manual-download instructions list"
    )


def _tfds(cfg: DataConfig) -> list[str]:
    if locate.parse_tfds_name(cfg.name) is None:
        return [
            f"data.name={cfg.name!r} is not a TFDS dataset name: use name, name/config, "
            "name:1.2.3 or name/config:1.2.3 in lower snake case (e.g. tf_flowers, imagenet2012)"
        ]
    if cfg.name.split("/")[0].split(":")[0] == locate.SYNTHETIC_NAME:
        return [f"data.name={cfg.name!r} is the embedded dataset: set data.source=synthetic"]
    if locate.prepared_dir(cfg.data_dir, cfg.name) is not None:
        return []
    if locate.manual_files(cfg.name):
        # Downloading does not help: these are only ever read from manual_dir.
        if locate.missing_manual_files(cfg.name, cfg.manual_dir):
            return [not_prepared_message(cfg)]
        return []
    if cfg.download or locate.manual_dir_has_files(cfg.manual_dir):
        return []
    return [not_prepared_message(cfg)]


def _folder(cfg: DataConfig) -> list[str]:
    if not cfg.path:
        return [
            "data.path is not set: data.source=folder needs the root of a class-per-subfolder "
            "image tree (train/ and val/, or one tree split by data.val_fraction)"
        ]
    root = locate.expand(cfg.path)
    if not root.is_dir():
        return [f"data.path={cfg.path!r} is not an existing directory"]
    layout = folder_layout.detect(root)
    if len(layout.classes) < 2:
        return [
            f"data.path={cfg.path!r} has {len(layout.classes)} class subfolder(s) in "
            f"{str(layout.train_dir)!r} ({', '.join(layout.classes) or 'none'}); at least 2 are "
            "needed: one subfolder of images per class"
        ]
    found = []
    empty = [c for c in layout.classes if not folder_layout.has_image(layout.train_dir / c)]
    if empty:
        exts = ", ".join(sorted(folder_layout.IMAGE_EXTENSIONS))
        found.append(
            f"data.path={cfg.path!r}: class folder(s) {', '.join(empty)} in "
            f"{str(layout.train_dir)!r} hold no image file ({exts})"
        )
    if layout.val_dir is not None:
        extra = sorted(set(folder_layout.subdirs(layout.val_dir)) - set(layout.classes))
        if extra:
            found.append(
                f"data.path={cfg.path!r}: {str(layout.val_dir)!r} has class folder(s) "
                f"{', '.join(extra)} that {str(layout.train_dir)!r} lacks; both splits need the "
                "same classes"
            )
    return found
