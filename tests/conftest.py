"""Shared fixtures: each test gets its own output directory and tracking store."""

from __future__ import annotations

import os

# Tests never look for a GPU and keep TensorFlow's C++ logging quiet; set before any import of TF.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
