"""A tf_flowers-like dataset (a train split only) built from PNG files in ``manual_dir``."""

from __future__ import annotations

from pathlib import Path

import tensorflow_datasets as tfds


class TinyManualFlowers(tfds.core.GeneratorBasedBuilder):  # registered as "tiny_manual_flowers"
    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = "Put <class>_<i>.png files into manual_dir."

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(None, None, 3)),
                    "label": tfds.features.ClassLabel(names=["daisy", "rose"]),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(Path(dl_manager.manual_dir))}

    def _generate_examples(self, folder: Path):
        for path in sorted(folder.glob("*.png")):
            yield path.name, {"image": path, "label": path.name.split("_")[0]}
