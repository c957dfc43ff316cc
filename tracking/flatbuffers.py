"""Attach a cell's exported files (LiteRT flatbuffers) to its run.

One function, so where the files go is decided in one place: the run's artifacts, under the
folder named in ``name`` (``tflite/model_fp32.tflite``), and, when the run logged its model, the
same folder of that LoggedModel (``mnv1.tracking.models``).
"""

from __future__ import annotations

import tempfile
from pathlib import PurePosixPath
from typing import Any


def log_flatbuffer(
    client: Any, run_id: str, name: str, data: bytes, model_id: str | None = None
) -> None:
    """Store ``data`` as artifact ``name`` of run ``run_id`` through ``client`` (an
    ``MlflowClient``, or the store's retrying one), and of LoggedModel ``model_id`` when given;
    a rerun replaces the file."""
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.name:
        raise ValueError(f"artifact name {name!r} must be a relative path without '..'")
    with tempfile.TemporaryDirectory(prefix="mnv1-export-") as folder:
        local = f"{folder}/{path.name}"
        with open(local, "wb") as out:
            out.write(data)
        parent = None if str(path.parent) == "." else str(path.parent)
        client.log_artifact(run_id, local, artifact_path=parent)
        if model_id is not None:
            client.log_model_artifact(model_id, local, parent)
