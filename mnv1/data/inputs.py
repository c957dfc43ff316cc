"""What a run read, as dataset inputs: the data it trained on and the data it was scored on.

``mnv1.tracking.datasets`` logs these as MLflow dataset inputs (the run page's Datasets section,
the runs table's Datasets column). Everything here comes from what preparation already wrote
and TFDS already loaded: the builder's ``dataset_info.json`` (split sizes, shard lengths, bytes per
split) is the dataset's identity, so the digest changes when the prepared data changes without
reading a single example again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from mnv1.data import builders
from mnv1.run_key import short_key

TRAINING = "training"
VALIDATION = "validation"
# A tune trial (data.holdout_percent) is scored on the tail of the training split, not on the
# validation split: its scored-on input says so by its context.
HOLDOUT = "holdout"


@dataclass(frozen=True)
class DataInput:
    """One split (or slice) a run read."""

    context: str  # TRAINING, VALIDATION or HOLDOUT
    name: str  # the TFDS name as the report prints it: "cifar10", "synthetic/t64_…"
    version: str  # the TFDS version of the prepared data
    split: str  # the split expression read: "train", "train[:58]", "train[58:64]"
    examples: int  # examples read from it (after data.max_val_examples)
    location: str  # where the prepared data lives (the builder's data path)
    digest: str  # changes when the prepared data, the slice or the count changes

    @property
    def title(self) -> str:
        """The dataset's name in MLflow: TFDS name, version and split."""
        return f"{self.name} {self.version} {self.split}"


def info_digest(builder: Any) -> str:
    """A digest of the prepared dataset, from TFDS's own record of it (``dataset_info.json``,
    already loaded with the builder): its version, splits, shard lengths and byte counts."""
    return hashlib.sha256(builder.info.as_json.encode("utf-8")).hexdigest()


def _digest(dataset: str, split: str, examples: int) -> str:
    return short_key({"dataset": dataset, "split": split, "examples": examples}, sort_keys=False)


def data_inputs(
    builder: Any, splits: builders.Splits, val_examples: int, holdout: bool
) -> tuple[DataInput, DataInput]:
    """The training input and the scored-on input of a run reading ``splits`` of ``builder``.

    ``val_examples`` is what the run scores on (``data.max_val_examples`` may cut the split);
    ``holdout`` says the scored-on slice is held out of the training split.
    """
    name, version = builders.display_name(builder), str(builder.version)
    location, dataset = str(builder.data_path), info_digest(builder)
    train = DataInput(
        TRAINING,
        name,
        version,
        splits.train,
        splits.train_examples,
        location,
        _digest(dataset, splits.train, splits.train_examples),
    )
    scored = DataInput(
        HOLDOUT if holdout else VALIDATION,
        name,
        version,
        splits.val,
        val_examples,
        location,
        _digest(dataset, splits.val, val_examples),
    )
    return train, scored
