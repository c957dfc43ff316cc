"""Where the tracking store is: the one rule every reader and writer of it follows.

Kept apart from ``mnv1.tracking.store`` (which imports MLflow) so that ``mnv1.tracking.queries``
can use the
same rule and still be imported for its types without loading MLflow.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_URI = "sqlite:///mlflow.db"


def resolve_uri(uri: str | None = None) -> str:
    """The tracking URI to use: ``uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``.

    A relative SQLite path is made absolute against the current directory, so every process of a
    sweep (and the worker a cell starts) writes to the same file whatever its own directory is.
    """
    chosen = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    prefix = "sqlite:///"
    if chosen.startswith(prefix) and not chosen.startswith(prefix + "/"):
        path = chosen[len(prefix) :]
        if path and path != ":memory:":
            chosen = prefix + str(Path(path).expanduser().absolute())
    return chosen
