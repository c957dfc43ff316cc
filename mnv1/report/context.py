"""What a sweep's numbers are about: its dataset, its training budget and how many seeds.

The report states these at the top, under every figure, and in the fidelity summary: an accuracy
means little without the data it was measured on and the training it took, and a comparison
with the TF-slim ImageNet checkpoints is a comparison of *shape* (which model beats which, the
sign of the slope) unless the sweep trained on ImageNet too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mnv1.report.records import CellRecord
from mnv1.tracking import schema
from mnv1.tracking.queries import CellRun

# TFDS names of ImageNet 2012 (data=imagenet): the only data the TF-slim accuracies are about.
IMAGENET_NAMES: frozenset[str] = frozenset({"imagenet2012"})
SYNTHETIC_NAME = "mnv1_synthetic"

SYNTHETIC_DESIGN = (
    "How the synthetic data depends on α and ρ (mnv1/data/synthetic.py): each class is a pair "
    "(shape family, fine texture), and neither the shape nor the texture alone names the class, "
    "so a model needs capacity to separate a textured target shape from flat-coloured clutter "
    "on a smooth random background (α) and input detail to see the texture (ρ): the texture "
    "periods, 4.5-5.5 px at the native 256 px, sit just above the Nyquist limit at ρ = 128 "
    "(about 2.3 px after the central crop), so lower resolutions lose texture evidence. The "
    "data was built so that α and ρ matter; that the trade-off has the paper's shape on it says "
    "the platform reproduces the experiment, not that the paper's ImageNet numbers hold here."
)


@dataclass(frozen=True)
class Budget:
    """One training budget: global steps and the global batch (images = steps × batch)."""

    epochs: int
    steps_per_epoch: int
    batch: int
    val_examples: int | None = None
    """Validation images the final top-1 was measured on (``data.max_val_examples`` caps it)."""

    @property
    def steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def images(self) -> int:
        return self.steps * self.batch

    def text(self) -> str:
        evaluated = (
            ""
            if self.val_examples is None
            else f", top-1 on {self.val_examples:,} validation images"
        )
        return (
            f"{self.epochs} epochs × {self.steps_per_epoch} steps × batch {self.batch} = "
            f"{self.images:,} training images{evaluated}"
        )


@dataclass(frozen=True)
class SweepContext:
    dataset: str | None
    """The TFDS name (``mnv1_synthetic``, ``imagenet2012``, a folder's name), None if unknown."""
    version: str | None = None
    num_classes: int | None = None
    splits: dict[str, int] = field(default_factory=dict)
    budgets: tuple[Budget, ...] = ()
    """Every distinct budget of the sweep's runs (one in a plain α × ρ sweep)."""
    seeds: tuple[int, ...] = ()
    """Seeds per cell, over the cells (e.g. ``(3,)``; ``(1, 3)`` when some cells have fewer)."""

    @property
    def base_name(self) -> str | None:
        """The dataset's TFDS name without its builder config (``mnv1_synthetic/s0_…``)."""
        return None if self.dataset is None else self.dataset.split("/", 1)[0]

    @property
    def imagenet(self) -> bool:
        return self.base_name in IMAGENET_NAMES

    @property
    def synthetic(self) -> bool:
        return self.base_name == SYNTHETIC_NAME

    def dataset_text(self) -> str:
        if self.dataset is None:
            return "dataset unknown (its runs logged no mnv1.data tags)"
        parts = [f"`{self.dataset}`" + (f" {self.version}" if self.version else "")]
        if self.num_classes:
            parts.append(f"{self.num_classes} classes")
        if self.splits:
            parts.append(", ".join(f"{k} {v:,}" for k, v in sorted(self.splits.items())))
        return ", ".join(parts)

    def budget_text(self) -> str:
        if not self.budgets:
            return "training budget unknown (its runs logged no step counts)"
        return "; ".join(b.text() for b in self.budgets)

    def seeds_text(self) -> str:
        if not self.seeds:
            return "no finished run"
        if len(self.seeds) == 1:
            n = self.seeds[0]
            return f"{n} seed per cell" if n == 1 else f"{n} seeds per cell"
        return f"{min(self.seeds)}-{max(self.seeds)} seeds per cell"

    def caption(self) -> str:
        """One line for a figure's caption: data, budget, seeds."""
        data = self.dataset or "unknown dataset"
        budget = (
            "; ".join(f"{b.images:,} training images ({b.epochs} × {b.steps_per_epoch} steps of "
                      f"{b.batch})" for b in self.budgets)
            if self.budgets
            else "unknown budget"
        )  # fmt: skip
        return f"Trained on {data} with {budget}, {self.seeds_text()}."

    def figure_note(self) -> str:
        """A short line for inside a figure, under its title: data, budget, seeds."""
        images = ", ".join(f"{b.images:,}" for b in self.budgets) or "unknown number of"
        return (
            f"{self.base_name or 'unknown dataset'}, {images} training images, {self.seeds_text()}"
        )

    def comparison_label(self) -> str:
        """How to read the accuracy comparison with TF-slim."""
        if self.imagenet:
            return "accuracy comparison (both on ImageNet; budgets differ)"
        return "shape comparison only (sign of the slope, rank order): not trained on ImageNet"


def _int(tags: Mapping[str, str], key: str) -> int | None:
    value = tags.get(key)
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _budget(run: CellRun) -> Budget | None:
    total = _int(run.tags, schema.TAG_TOTAL_STEPS)
    per_epoch = _int(run.tags, schema.TAG_STEPS_PER_EPOCH)
    per_replica = _int(run.tags, schema.TAG_PER_REPLICA_BATCH)
    replicas = _int(run.tags, schema.TAG_REPLICAS) or 1
    if not total or not per_epoch or not per_replica:
        return None
    val = run.metrics.get(schema.METRIC_VAL_EXAMPLES)
    return Budget(
        total // per_epoch, per_epoch, per_replica * replicas, None if val is None else round(val)
    )


def sweep_context(
    parent_tags: Mapping[str, str], runs: Sequence[CellRun], records: Sequence[CellRecord]
) -> SweepContext:
    """The dataset (from the parent's tags, else a run's), the budgets of the runs that answer
    the grid's cells, and the seeds per cell."""
    answering = {r.run_id for rec in records for r in rec.runs if r.run_id}
    used = [r for r in runs if r.run_id in answering]
    sources = [parent_tags, *(r.tags for r in used)]
    tags: Mapping[str, str] = next((t for t in sources if schema.TAG_DATA_NAME in t), {})
    prefix = schema.TAG_DATA_SPLIT_PREFIX
    splits = {k.removeprefix(prefix): int(v) for k, v in tags.items() if k.startswith(prefix)}
    budgets = sorted(
        {b for r in used if (b := _budget(r)) is not None},
        key=lambda b: (b.images, b.epochs),
    )
    return SweepContext(
        dataset=tags.get(schema.TAG_DATA_NAME),
        version=tags.get(schema.TAG_DATA_VERSION),
        num_classes=_int(tags, schema.TAG_DATA_NUM_CLASSES),
        splits=splits,
        budgets=tuple(budgets),
        seeds=tuple(sorted({len(r.top1_values) for r in records if r.top1_values})),
    )
