"""Credentials out of the command line before Hydra or anything else sees it.

Hydra prints the overrides, stores them in each job's ``.hydra/overrides.yaml`` and
``multirun.yaml``, and a sweep or a search logs its config; a password left in ``tracking.uri``
would be copied into all of those. ``without_credentials`` moves it into the environment first
(``mnv1.tracking.uri.adopt_credentials``: a server's user and password into MLflow's own
variables, a database URI's password into ``MNV1_TRACKING_DB_PASSWORD``, leaving
``postgresql://user:***@host/db``); the processes a launch starts inherit it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

URI_KEY = "tracking.uri"


def without_credentials(arguments: Sequence[str]) -> list[str]:
    """The command line with the credentials of ``tracking.uri`` (and of
    ``$MLFLOW_TRACKING_URI``) moved into the environment."""
    from mnv1.tracking.uri import ENV_URI, adopt_credentials

    if os.environ.get(ENV_URI):
        os.environ[ENV_URI] = adopt_credentials(os.environ[ENV_URI])
    out = []
    for argument in arguments:
        key, sep, value = argument.partition("=")
        if sep and key.lstrip("+~") == URI_KEY and value:
            argument = f"{key}={adopt_credentials(value)}"
        out.append(argument)
    return out
