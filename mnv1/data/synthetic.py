"""The embedded synthetic dataset: a TFDS builder (``mnv1_synthetic``) prepared into ``data_dir``.

Why it exists: the default for ``make demo`` and the tests, it needs no download and no network,
yet it is hard enough that the width multiplier α and the input resolution ρ both change the
accuracy, and short demo budgets stay well below 100%.

How an image is generated (``mnv1.data.synthetic_images``, vectorised numpy, RGB at a native
256 × 256, JPEG quality 92):

1. **Background**: two random colours blended by a smooth random field (a 6 × 6 random grid,
   bilinearly upsampled), so no flat colour gives the class away.
2. **Clutter**: two flat-coloured distractor shapes of random families (the same five families
   as the targets), small (radius 6-13% of the side), anywhere, at random angles.
3. **Target**: one larger shape (radius 17-30% of the side, centre in the middle 40% of each
   axis, random angle, random colour) drawn over the clutter and filled with a fine texture at a
   random contrast (0.12-0.3), phase and period (±10%).
4. **Noise**: Gaussian pixel noise with a per-image strength (σ 1-4% of full scale).

The class is the target's (shape family, texture) pair. Shape families: disk, square, triangle,
ring, cross. Textures: vertical stripes, horizontal stripes, plaid, diagonal cross-hatch,
concentric rings, with periods of 4.5-5.5 px at 256 px; each texture is its own mirror image, so
horizontal flips keep the class. Class k is (shape ``k mod 5``, texture ``(k mod 5 + k div 5) mod
5``): with the default 10 classes every shape appears with two textures and every texture with
two shapes, so a model must see both the coarse shape and the fine texture. The texture periods
sit just above the Nyquist limit at ρ = 128 (4.5 px at 256 → 2.3 px at 128 after the 87.5%
central crop), so lower resolutions lose texture evidence and smaller widths have less capacity
to separate shapes from clutter.

Determinism and balance: labels are ``arange(n) mod num_classes`` shuffled by a generator seeded
with ``(seed, split)``; each chunk of 64 images is rendered from a generator seeded with
``(seed, split, chunk)``. The same ``SyntheticConfig`` therefore always gives byte-identical
examples, and class sizes differ by at most one.

Each ``SyntheticConfig`` is its own TFDS builder config, named from all its parameters (e.g.
``s0_tr5000_va1000_c10_px256``), so different sizes or seeds never share a directory in
``data_dir``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import tensorflow_datasets as tfds

from mnv1.config import SyntheticConfig
from mnv1.data import synthetic_images

DATASET_VERSION = "1.0.0"
SPLIT_IDS = {"train": 0, "validation": 1}


def config_name(s: SyntheticConfig) -> str:
    """The builder config name: every parameter that changes the examples."""
    return f"s{s.seed}_tr{s.train_size}_va{s.val_size}_c{s.num_classes}_px{s.image_size}"


@dataclasses.dataclass(eq=False)
class SyntheticBuilderConfig(tfds.core.BuilderConfig):
    train_size: int = 5000
    val_size: int = 1000
    num_classes: int = 10
    image_size: int = synthetic_images.NATIVE_SIZE
    seed: int = 0

    @classmethod
    def from_config(cls, s: SyntheticConfig) -> SyntheticBuilderConfig:
        return cls(
            name=config_name(s),
            version=DATASET_VERSION,
            description=f"{s.num_classes} shape × texture classes at {s.image_size} px",
            train_size=s.train_size,
            val_size=s.val_size,
            num_classes=s.num_classes,
            image_size=s.image_size,
            seed=s.seed,
        )


class Mnv1Synthetic(tfds.core.GeneratorBasedBuilder):  # registered as "mnv1_synthetic"
    """Shapes with fine textures on cluttered backgrounds; class = (shape, texture)."""

    VERSION = tfds.core.Version(DATASET_VERSION)
    RELEASE_NOTES = {DATASET_VERSION: "First release."}  # noqa: RUF012 (TFDS reads a class attribute)

    @property
    def _cfg(self) -> SyntheticBuilderConfig:
        cfg = self.builder_config
        assert isinstance(cfg, SyntheticBuilderConfig)
        return cfg

    def _info(self) -> tfds.core.DatasetInfo:
        size = self._cfg.image_size
        names = [
            f"{synthetic_images.SHAPES[s]}-{synthetic_images.TEXTURES[t]}"
            for s, t in map(synthetic_images.class_attributes, range(self._cfg.num_classes))
        ]
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(size, size, 3), encoding_format="jpeg"),
                    "label": tfds.features.ClassLabel(names=names),
                }
            ),
            supervised_keys=("image", "label"),
            description=__doc__,
        )

    def _split_generators(self, dl_manager: Any) -> dict[str, Any]:
        sizes = {"train": self._cfg.train_size, "validation": self._cfg.val_size}
        return {split: self._generate_examples(split, count) for split, count in sizes.items()}

    def _generate_examples(self, split: str, count: int) -> Iterator[tuple[int, dict[str, Any]]]:
        cfg = self._cfg
        for index, jpeg, label in synthetic_images.generate(
            count, cfg.num_classes, cfg.image_size, cfg.seed, SPLIT_IDS[split]
        ):
            yield index, {"image": jpeg, "label": label}


def builder(s: SyntheticConfig, data_dir: str) -> Mnv1Synthetic:
    return Mnv1Synthetic(config=SyntheticBuilderConfig.from_config(s), data_dir=data_dir)
