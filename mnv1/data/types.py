"""What the data layer hands to training: the contract between ``mnv1.data`` and "
"``mnv1.training.run``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mnv1.tracking import schema


@dataclass(frozen=True)
class Fingerprint:
    """Identifies the data a run saw; logged as tags so runs on different data never compare."""

    name: str
    version: str
    splits: dict[str, int] = field(default_factory=dict)
    num_classes: int = 0
    skipped_images: int = 0
    """Unreadable images left out of a folder source (``data.skip_bad_images=true``)."""

    def as_tags(self) -> dict[str, str]:
        tags = {
            schema.TAG_DATA_NAME: self.name,
            schema.TAG_DATA_VERSION: self.version,
            schema.TAG_DATA_NUM_CLASSES: str(self.num_classes),
        }
        prefix = schema.TAG_DATA_SPLIT_PREFIX
        tags.update({f"{prefix}{k}": str(v) for k, v in sorted(self.splits.items())})
        if self.skipped_images:  # only folders with bad files carry it: clean data stays as before
            tags["mnv1.data.skipped_images"] = str(self.skipped_images)
        return tags


@dataclass
class Datasets:
    """Ready-to-fit input pipelines at one resolution.

    ``train`` yields ``(images, labels)`` batches of exactly the global batch size (remainder
    dropped, so a distribution strategy splits every batch evenly); ``val`` yields every
    validation example exactly once, the last batch possibly short. Images are float32 NHWC at
    ``resolution × resolution``, scaled to [-1, 1]; labels are int32 class ids.
    """

    train: Any  # tf.data.Dataset
    val: Any  # tf.data.Dataset
    num_classes: int
    train_examples: int
    val_examples: int
    fingerprint: Fingerprint
    inputs: tuple[Any, ...] = ()
    """The splits read, as ``mnv1.data.inputs.DataInput`` (training first, then scored-on)."""
