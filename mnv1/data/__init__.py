"""Input data: TFDS sources (named datasets, image folders, the embedded synthetic set)."""
