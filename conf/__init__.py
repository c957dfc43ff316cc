"""Hydra config tree, shipped as a package so installed console scripts find it."""
