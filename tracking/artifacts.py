"""Attach the report's files to the sweep's parent run, so the MLflow UI shows them in place."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .uri import connect_uri, resolve_uri

REPORT_ARTIFACT_DIR = "report"


def log_report(
    run_id: str,
    files: Iterable[str | Path],
    uri: str | None = None,
    artifact_path: str = REPORT_ARTIFACT_DIR,
) -> list[str]:
    """Log ``files`` onto ``run_id`` under ``artifact_path``; returns what is stored there now.

    Only the files the report wrote are logged, never the whole output directory, which may
    hold a user's other files. A rebuilt report replaces the earlier files of the same name.
    Works on a finished parent run too: logging artifacts does not reopen it or change its status.
    """
    from mlflow import MlflowClient

    paths = [Path(f) for f in files]
    for path in paths:
        if not path.is_file():
            raise ValueError(f"report file {str(path)!r} does not exist; nothing was logged")
    client = MlflowClient(tracking_uri=connect_uri(resolve_uri(uri)))
    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path=artifact_path)
    return sorted(f.path for f in client.list_artifacts(run_id, artifact_path) if not f.is_dir)
