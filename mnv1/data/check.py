"""Is a data config usable? Pure Python: never imports TensorFlow or TFDS.

The config validator calls ``problems`` for every cell of a grid before any TensorFlow process
starts, so this module only looks at the config and the file system. Each problem names the key,
the value received and what is allowed or what to do.
"""

from __future__ import annotations

from mnv1.config import AUGMENTATIONS, DATA_SOURCES, DataConfig, SyntheticConfig
from mnv1.data import folder_layout, locate
from mnv1.data.synthetic_images import MAX_CLASSES

MIN_SYNTHETIC_SIZE = 32  # the smallest input MobileNetV1 accepts; smaller images carry no texture


def problems(cfg: DataConfig) -> list[str]:
    """Everything wrong with ``cfg``; an empty list means the data can be prepared and loaded."""
    found = _common(cfg)
    if cfg.source == "synthetic":
        found += _synthetic(cfg)
    elif cfg.source == "tfds":
        found += _tfds(cfg)
    elif cfg.source == "folder":
        found += _folder(cfg)
    return found


def _common(cfg: DataConfig) -> list[str]:
    found = []
    if cfg.source not in DATA_SOURCES:
        found.append(f"data.source={cfg.source!r} is not one of {', '.join(DATA_SOURCES)}")
    if cfg.augment not in AUGMENTATIONS:
        found.append(f"data.augment={cfg.augment!r} is not one of {', '.join(AUGMENTATIONS)}")
    if not 0.0 < cfg.val_fraction < 1.0:
        found.append(f"data.val_fraction={cfg.val_fraction!r} must be between 0 and 1 (exclusive)")
    if cfg.max_val_examples is not None and cfg.max_val_examples < 1:
        found.append(
            f"data.max_val_examples={cfg.max_val_examples!r} must be at least 1, or null for all"
        )
    if not cfg.data_dir:
        found.append("data.data_dir is empty: give the directory that holds prepared datasets")
    holdout = cfg.holdout_percent
    if holdout is not None and (
        isinstance(holdout, bool) or not isinstance(holdout, int) or not 1 <= holdout <= 50
    ):
        found.append(
            f"data.holdout_percent={holdout!r} must be an integer from 1 to 50, or null for the "
            "validation split"
        )
    elif holdout is not None and cfg.source == "tfds" and "[" in cfg.train_split:
        found.append(
            f"data.holdout_percent={holdout!r} needs data.train_split to be a split name, not "
            f"the slice {cfg.train_split!r}"
        )
    return found


def _synthetic(cfg: DataConfig) -> list[str]:
    found = []
    if cfg.name != locate.SYNTHETIC_NAME:
        found.append(
            f"data.name={cfg.name!r} does not go with data.source='synthetic' (whose dataset is "
            f"{locate.SYNTHETIC_NAME!r}): set data.source=tfds for a TFDS dataset by name"
        )
    s: SyntheticConfig = cfg.synthetic
    if not 2 <= s.num_classes <= MAX_CLASSES:
        found.append(
            f"data.synthetic.num_classes={s.num_classes!r} must be between 2 and {MAX_CLASSES} "
            "(classes are distinct shape × texture pairs)"
        )
    if s.train_size < max(s.num_classes, 1):
        found.append(
            f"data.synthetic.train_size={s.train_size!r} must be at least num_classes "
            f"({s.num_classes}) so every class is present"
        )
    if s.val_size < 1:
        found.append(f"data.synthetic.val_size={s.val_size!r} must be at least 1")
    if s.image_size < MIN_SYNTHETIC_SIZE:
        found.append(
            f"data.synthetic.image_size={s.image_size!r} must be at least {MIN_SYNTHETIC_SIZE}"
        )
    if s.seed < 0:
        found.append(f"data.synthetic.seed={s.seed!r} must be a non-negative integer")
    return found


def not_prepared_message(cfg: DataConfig) -> str:
    """What to do when a named TFDS dataset is not prepared and may not be downloaded."""
    missing = locate.missing_manual_files(cfg.name, cfg.manual_dir)
    where = f"data.data_dir={cfg.data_dir!r}"
    if locate.manual_files(cfg.name):
        needed = " and ".join(locate.manual_files(cfg.name))
        have = (
            "data.manual_dir is not set"
            if cfg.manual_dir is None
            else f"data.manual_dir={cfg.manual_dir!r} lacks {', '.join(missing)}"
        )
        return (
            f"data.name={cfg.name!r} is not prepared under {where} and TFDS cannot download it: "
            f"download {needed} from {locate.IMAGENET_URL} (free registration), put both files "
            f"in one directory and set data.manual_dir to it ({have}); the first run then "
            f"prepares it into data.data_dir once"
        )
    if cfg.manual_dir is not None and not locate.manual_dir_has_files(cfg.manual_dir):
        return (
            f"data.name={cfg.name!r} is not prepared under {where}, and "
            f"data.manual_dir={cfg.manual_dir!r} is missing or empty: put the dataset's "
            "manually downloaded files there, or set data.download=true on a machine with network"
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
