"""A SQLite tracking store that is either whole or absent, and a clear word on one that is not.

MLflow creates a SQLite store in place: the tables of its first schema, then one Alembic
migration after another, dozens of statements, not in one transaction. A Ctrl-C in those seconds
(a first launch is the usual moment) left a store that every later command failed on with a SQL
error (``index ... already exists``, ``duplicate column name: step``). So ``create`` builds the
store complete in a file beside the target and then links it into place: a link either happens
whole or not at all, never replaces a store another launch made meanwhile, and an interrupt
before it leaves no store (the next launch creates it again) and no stray file.

Building a store runs MLflow's migrations, seconds on a small CPU, the largest part of a first
sweep's start. So the first store built on a host is kept as a template (``template_path``: one
per MLflow version and schema revision, under ``~/.cache/mnv1/mlflow-stores/``, moved by
``$MNV1_STORE_TEMPLATES``), and later stores are copies of it, linked into place the same way.
The template holds MLflow's schema and nothing else: its one row, the "Default" experiment, is
taken out, because MLflow writes it with the working directory of the process that creates the
store; a copy has no experiment, so MLflow adds it on first opening the store, as it does for a
store it has just migrated. A template that is not a whole store is ignored and built again.

``check`` reads an existing store's schema with the standard library's ``sqlite3`` (no MLflow
engine, no write) and names a store that was left half-created or belongs to another MLflow
version, with what to do, before MLflow would fail on it with a SQL traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
from pathlib import Path

log = logging.getLogger(__name__)

ENV_TEMPLATE_DIR = "MNV1_STORE_TEMPLATES"


class BrokenStoreError(RuntimeError):
    """The SQLite store exists but is not a complete store of this MLflow's schema."""


def _schema_head() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return str(_get_latest_schema_revision())


def _expected_tables() -> set[str]:
    # The ORM models register their tables on Base when the store module is imported.
    import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    from mlflow.store.db.base_sql_model import Base

    return set(Base.metadata.tables)


def _read_schema(db: Path) -> tuple[set[str], str | None]:
    """The store's table names and its Alembic revision (None where there is none)."""
    # mode=ro: reading must never create or change the file.
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as conn:
        listed = conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        tables = {row[0] for row in listed}
        revision = None
        if "alembic_version" in tables:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = None if row is None else str(row[0])
    return tables - {"alembic_version"}, revision


def is_empty(db: Path) -> bool:
    """True for a missing file, or one without a single table (SQLite creates an empty file on
    a mere connection)."""
    if not db.exists():
        return True
    try:
        tables, revision = _read_schema(db)
    except sqlite3.DatabaseError:
        return False  # not a database at all: ``check`` says so
    return not tables and revision is None


def check(db: Path) -> None:
    """Raise ``BrokenStoreError`` when the store at ``db`` is not a whole store of this MLflow's
    schema; a missing or empty file passes (``create`` makes it)."""
    if is_empty(db):
        return
    try:
        tables, revision = _read_schema(db)
    except sqlite3.DatabaseError as exc:
        raise BrokenStoreError(
            f"the tracking store {db} is not a SQLite database ({exc}); point tracking.uri at "
            "another file, or move this one aside and relaunch"
        ) from None
    missing = sorted(_expected_tables() - tables)
    head = _schema_head()
    if revision == head and not missing:
        return
    aside = f"mv {db} {db}.broken"
    if missing or revision is None:
        what = f"missing the table(s) {', '.join(missing)}" if missing else "no schema version"
        raise BrokenStoreError(
            f"the tracking store {db} was left half-created ({what}): a first launch was "
            "interrupted while MLflow created it. Its runs, if any, cannot be trusted; move it "
            f"aside (`{aside}`) and relaunch, which creates a whole store"
        )
    raise BrokenStoreError(
        f"the tracking store {db} is at schema version {revision}, not {head} (this MLflow's): "
        "an older MLflow wrote it, or an interrupt stopped its migration. Back it up, then run "
        f"`mlflow db upgrade sqlite:///{db}`; if that fails too, move it aside (`{aside}`) and "
        "relaunch"
    )


def create(db: Path) -> None:
    """Create a complete MLflow store at ``db`` unless one is there (see the module docstring).

    Safe against a concurrent launch: the first link wins and the other launch's whole store is
    simply dropped.
    """
    if not is_empty(db):
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    building = db.with_name(f".{db.name}.creating-{os.getpid()}")
    try:
        if not _copy_template(building):
            _migrate(building)
            _keep_as_template(building)
        if db.exists():
            # An empty file (a bare connection made it): replace it, unless it got a schema
            # from another launch meanwhile.
            if is_empty(db):
                os.replace(building, db)
        else:
            with contextlib.suppress(FileExistsError):
                os.link(building, db)  # atomic, and never over a store made meanwhile
    finally:
        for leftover in (building, building.with_name(building.name + "-journal")):
            leftover.unlink(missing_ok=True)


def template_path() -> Path:
    """The template store of this MLflow version and schema revision (module docstring)."""
    import mlflow

    configured = os.environ.get(ENV_TEMPLATE_DIR)
    folder = (
        Path(configured).expanduser() if configured else Path.home() / ".cache/mnv1/mlflow-stores"
    )
    return folder / f"mlflow-{mlflow.__version__}-{_schema_head()}.db"


def _migrate(building: Path) -> None:
    """Build a store at ``building`` with MLflow's own schema creation and migrations."""
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{building}"
    store = SqlAlchemyStore(uri, DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
    # Close every connection before the file moves: MLflow keeps one engine per URI.
    store.engine.dispose()
    SqlAlchemyStore._engine_map.pop(uri, None)


def _copy_template(building: Path) -> bool:
    """Copy the template to ``building``; False (nothing copied) where there is no whole one."""
    template = template_path()
    if not template.exists():
        return False
    try:
        check(template)
        shutil.copyfile(template, building)
    except (OSError, sqlite3.DatabaseError, BrokenStoreError) as exc:
        log.info("not using the store template %s (%s): building the store", template, exc)
        building.unlink(missing_ok=True)
        return False
    return True


def _keep_as_template(store: Path) -> None:
    """Keep a copy of the freshly built ``store``, without its Default experiment, as the
    template; placed whole (a rename) or not at all. A cache that cannot be written only costs
    the next store its migrations."""
    template = template_path()
    partial = template.with_name(f".{template.name}.{os.getpid()}")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store, partial)
        with contextlib.closing(sqlite3.connect(partial)) as conn, conn:
            conn.execute("DELETE FROM experiments")
        os.replace(partial, template)
    except (OSError, sqlite3.DatabaseError) as exc:
        log.info("could not keep the store template %s: %s", template, exc)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
