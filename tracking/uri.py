"""Where the tracking store is: the one rule every reader and writer of it follows.

Kept apart from ``mnv1.tracking.store`` (which imports MLflow) so that ``mnv1.tracking.queries``
can use the same rule and still be imported for its types without loading MLflow.

Credentials never travel inside a URI past this module. ``http://user:pass@host:5000`` is split:
the user and password go into ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD`` (which
MLflow's REST client sends as HTTP basic auth, and which every worker process inherits), and only
``http://host:5000`` is kept. A database URI (``postgresql://mnv1:pw@host/db``, mysql, mssql, any
scheme) keeps its user and loses its password the same way: the password goes into
``MNV1_TRACKING_DB_PASSWORD`` and the URI becomes ``postgresql://mnv1:***@host/db``, the form
every param, artifact, Hydra file and log line then carries; only ``connect_uri``, at the moment
a database connection is opened, puts the password back. A URI is logged as a param, written into
config artifacts and printed in log lines; a password inside it would end up in all of those.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

DEFAULT_URI = "sqlite:///mlflow.db"
ENV_URI = "MLFLOW_TRACKING_URI"
ENV_USERNAME = "MLFLOW_TRACKING_USERNAME"
ENV_PASSWORD = "MLFLOW_TRACKING_PASSWORD"
ENV_DB_PASSWORD = "MNV1_TRACKING_DB_PASSWORD"
# What stands in a recorded database URI where its password was.
PLACEHOLDER = "***"
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


def _with_userinfo(uri: str, userinfo: str) -> str:
    parts = urlsplit(uri)
    hostport = parts.netloc.rpartition("@")[2]
    netloc = f"{userinfo}@{hostport}" if userinfo else hostport
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact(uri: str) -> str:
    """``uri`` fit to print: a password becomes ``***`` (``postgresql://mnv1:***@host/db``); a
    user part alone becomes ``***`` too, since a token is often passed there
    (``https://TOKEN@host``)."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    user, has_password, _ = parts.netloc.rpartition("@")[0].partition(":")
    return _with_userinfo(uri, f"{user}:{PLACEHOLDER}" if has_password else PLACEHOLDER)


def adopt_credentials(uri: str, environ: MutableMapping[str, str] | None = None) -> str:
    """Move the user info of a tracking-server URI into MLflow's credential variables.

    Returns the URI without it. Credentials given in the URI win over the variables: the URI is
    the more specific of the two, written for this launch.
    """
    env = os.environ if environ is None else environ
    if not is_http(uri):
        return _adopt_database_password(uri, env)
    clean, user, password = split_credentials(uri)
    if user is not None:
        env[ENV_USERNAME] = user
    if password is not None:
        env[ENV_PASSWORD] = password
    return clean


def _adopt_database_password(uri: str, env: MutableMapping[str, str]) -> str:
    """``scheme://user:pw@host/db`` -> ``scheme://user:***@host/db``, the password into
    ``MNV1_TRACKING_DB_PASSWORD`` (a URI already redacted is left as it is)."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    user, has_password, password = parts.netloc.rpartition("@")[0].partition(":")
    if not has_password or password == PLACEHOLDER:
        return uri
    env[ENV_DB_PASSWORD] = unquote(password)
    return _with_userinfo(uri, f"{user}:{PLACEHOLDER}")


def connect_uri(uri: str, environ: MutableMapping[str, str] | None = None) -> str:
    """The URI to open a connection with: a database URI's ``***`` replaced by the password
    ``adopt_credentials`` set aside. Never record or print what this returns."""
    env = os.environ if environ is None else environ
    parts = urlsplit(uri)
    if is_http(uri) or "@" not in parts.netloc or ENV_DB_PASSWORD not in env:
        return uri
    user, has_password, password = parts.netloc.rpartition("@")[0].partition(":")
    if not has_password or password != PLACEHOLDER:
        return uri
    return _with_userinfo(uri, f"{user}:{quote(env[ENV_DB_PASSWORD], safe='')}")


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
