"""Where the tracking store is: the one rule every reader and writer of it follows.

Kept apart from ``mnv1.tracking.store`` (which imports MLflow) so that ``mnv1.tracking.queries``
can use the same rule and still be imported for its types without loading MLflow.

Credentials never travel inside a URI past this module. ``http://user:pass@host:5000`` is split:
the user and password go into ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (which
MLflow's REST client sends as HTTP basic auth, and which every worker process inherits), and only
``http://host:5000`` is kept. A URI is logged as a param, written into config artifacts and
printed in log lines; a password inside it would end up in all of those.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

DEFAULT_URI = "sqlite:///mlflow.db"
ENV_URI = "MLFLOW_TRACKING_URI"
ENV_USERNAME = "MLFLOW_TRACKING_USERNAME"
ENV_PASSWORD = "MLFLOW_TRACKING_PASSWORD"
_HTTP_SCHEMES = ("http", "https")


def is_http(uri: str) -> bool:
    """True for a tracking server (``http://`` or ``https://``), False for a local store."""
    return urlsplit(uri).scheme.lower() in _HTTP_SCHEMES


def split_credentials(uri: str) -> tuple[str, str | None, str | None]:
    """``(uri without user info, user, password)``; user and password are None when absent.

    Only tracking-server URIs carry credentials this way; a database URI
    (``postgresql://user:pw@host/db``) is returned unchanged, since its driver needs them there.
    """
    if not is_http(uri):
        return uri, None, None
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri, None, None
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, has_password, password = userinfo.partition(":")
    clean = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return clean, unquote(user) or None, unquote(password) if has_password else None


def redact(uri: str) -> str:
    """``uri`` fit to print: the user info of any URI (server or database) replaced by ``***``."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    hostport = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, "***@" + hostport, parts.path, parts.query, parts.fragment))


def adopt_credentials(uri: str, environ: MutableMapping[str, str] | None = None) -> str:
    """Move the user info of a tracking-server URI into MLflow's credential variables.

    Returns the URI without it. Credentials given in the URI win over the variables: the URI is
    the more specific of the two, written for this launch.
    """
    env = os.environ if environ is None else environ
    clean, user, password = split_credentials(uri)
    if user is not None:
        env[ENV_USERNAME] = user
    if password is not None:
        env[ENV_PASSWORD] = password
    return clean


def resolve_uri(uri: str | None = None) -> str:
    """The tracking URI to use: ``uri``, else ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``.

    A relative SQLite path is made absolute against the current directory, so every process of a
    sweep (and the worker a cell starts) writes to the same file whatever its own directory is.
    Credentials in a server URI move into the environment (``adopt_credentials``).
    """
    chosen = adopt_credentials(uri or os.environ.get(ENV_URI) or DEFAULT_URI)
    prefix = "sqlite:///"
    if chosen.startswith(prefix) and not chosen.startswith(prefix + "/"):
        path = chosen[len(prefix) :]
        if path and path != ":memory:":
            chosen = prefix + str(Path(path).expanduser().absolute())
    return chosen
