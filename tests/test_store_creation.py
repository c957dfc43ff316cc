"""The SQLite tracking store is created whole or not at all, and a store left half-created (by
an interrupted first launch of an older version) is named as such with what to do.

Real MLflow stores throughout: one store is created by ``mnv1.tracking.sqlite_store.create``
(MLflow's own schema and migrations) and copied for each test; the broken ones are that store
with a table dropped or its schema version moved back, as an interrupted migration leaves it.
Later stores of a host are copies of the first one's schema (its template), which these tests
show to be the store MLflow builds."""

from __future__ import annotations

import contextlib
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mnv1.tracking import sqlite_store
from mnv1.tracking.sqlite_store import BrokenStoreError
from mnv1.tracking.store import (
    TrackingUnreachableError,
    check_reachable,
    ensure_experiment,
    find_experiment,
)
from sweep_support import REPO, Workspace

# The child: take the signals over as every console script does, then create the store.
CREATE = """
import sys
from pathlib import Path
from mnv1 import interrupt
from mnv1.tracking import sqlite_store
interrupt.install()
try:
    sqlite_store.create(Path(sys.argv[1]))
except KeyboardInterrupt as exc:
    sys.exit(interrupt.exit_code(interrupt.signum_of(exc)))
"""


@pytest.fixture(scope="module")
def whole_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    sqlite_store.create(db)
    return db


def _copy(store: Path, folder: Path) -> Path:
    db = folder / "mlflow.db"
    shutil.copyfile(store, db)
    return db


@pytest.mark.timeout(120)
def test_a_new_store_is_whole_and_opens(whole_store: Path, tmp_path: Path) -> None:
    sqlite_store.check(whole_store)
    assert sorted(p.name for p in whole_store.parent.iterdir()) == ["mlflow.db"]
    db = _copy(whole_store, tmp_path)
    uri = f"sqlite:///{db}"
    assert ensure_experiment(uri, "smoke") == "1"
    assert find_experiment(uri, "smoke") == "1"


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupt_while_the_store_is_created_leaves_no_store(
    signum: signal.Signals, tmp_path: Path
) -> None:
    db = tmp_path / "runs" / "mlflow.db"
    # No template yet: MLflow's migrations build the store, the part an interrupt can split.
    env = Workspace(tmp_path).env(**{sqlite_store.ENV_TEMPLATE_DIR: str(tmp_path / "templates")})
    proc = subprocess.Popen(
        [sys.executable, "-c", CREATE, str(db)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # The store is being built beside its place from its first table on; MLflow's migrations
    # then take seconds: the signal lands in the middle of them.
    deadline = time.monotonic() + 200
    while not list(db.parent.glob(".mlflow.db.creating-*")):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "the store's creation never started"
        time.sleep(0.02)
    proc.send_signal(signum)
    output, _ = proc.communicate(timeout=120)
    assert not db.exists(), output  # no store rather than half a store
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 128 + signum, output
        assert list(db.parent.iterdir()) == []  # nor the file it was being built in
    assert not list((tmp_path / "templates").glob("*.db"))  # nor a template of half a store
    # The next launch creates it whole.
    assert ensure_experiment(f"sqlite:///{db}", "smoke") == "1"
    sqlite_store.check(db)


def _experiments(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [row[0] for row in conn.execute("SELECT name FROM experiments")]


def _dump(db: Path) -> list[str]:
    """The store as SQL, every millisecond timestamp (creation times) replaced by T and its own
    folder (where its experiments keep their artifacts) by DIR."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [
            re.sub(r"\b\d{13}\b", "T", line.replace(str(db.parent), "DIR"))
            for line in conn.iterdump()
        ]


def test_later_stores_are_copies_of_the_first_and_equal_to_what_mlflow_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sqlite_store.ENV_TEMPLATE_DIR, str(tmp_path / "templates"))
    monkeypatch.chdir(tmp_path)  # MLflow's Default experiment lives under the working directory
    built, copied = tmp_path / "built" / "mlflow.db", tmp_path / "copied" / "mlflow.db"
    sqlite_store.create(built)  # no template yet: MLflow's migrations, kept as the template
    template = sqlite_store.template_path()
    assert template.parent == tmp_path / "templates" and template.exists()
    assert _experiments(template) == []  # the schema only
    sqlite_store.create(copied)
    assert _experiments(built) == ["Default"]  # written by MLflow as it built the store
    assert _experiments(copied) == []  # a copy of the template: MLflow adds it when it opens

    for db in (built, copied):
        assert ensure_experiment(f"sqlite:///{db}", "smoke") == "1"
    assert _dump(copied) == _dump(built)


def test_a_template_that_is_not_a_whole_store_is_built_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sqlite_store.ENV_TEMPLATE_DIR, str(tmp_path / "templates"))
    template = sqlite_store.template_path()
    template.parent.mkdir()
    template.write_text("not a database\n" * 100)
    db = tmp_path / "mlflow.db"
    sqlite_store.create(db)
    sqlite_store.check(db)
    sqlite_store.check(template)  # replaced by the store just built, its experiments taken out
    assert _experiments(db) == ["Default"] and _experiments(template) == []


def test_a_template_folder_that_cannot_be_written_still_gives_a_whole_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    monkeypatch.setenv(sqlite_store.ENV_TEMPLATE_DIR, str(blocker / "templates"))
    db = tmp_path / "mlflow.db"
    sqlite_store.create(db)
    sqlite_store.check(db)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "mlflow.db"]


def _drop_table(db: Path, table: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(f"DROP TABLE {table}")


def test_a_half_created_store_is_named_with_what_to_do(whole_store: Path, tmp_path: Path) -> None:
    db = _copy(whole_store, tmp_path)
    _drop_table(db, "trace_info")
    expected = (
        f"the tracking store {db} was left half-created (missing the table(s) trace_info): a "
        "first launch was interrupted while MLflow created it. Its runs, if any, cannot be "
        f"trusted; move it aside (`mv {db} {db}.broken`) and relaunch, which creates a whole "
        "store"
    )
    with pytest.raises(BrokenStoreError) as caught:
        ensure_experiment(f"sqlite:///{db}", "smoke")
    assert str(caught.value) == expected
    # mnv1-train's check before anything starts (exit 3) says the same.
    with pytest.raises(TrackingUnreachableError) as unreachable:
        check_reachable(f"sqlite:///{db}")
    assert str(unreachable.value) == expected


def test_a_store_without_its_schema_version_is_half_created(
    whole_store: Path, tmp_path: Path
) -> None:
    db = _copy(whole_store, tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM alembic_version")
    with pytest.raises(BrokenStoreError, match=r"half-created \(no schema version\)"):
        sqlite_store.check(db)


def test_a_store_at_another_schema_version_says_how_to_upgrade(
    whole_store: Path, tmp_path: Path
) -> None:
    db = _copy(whole_store, tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0584bdc529eb'")
    with pytest.raises(BrokenStoreError) as caught:
        sqlite_store.check(db)
    head = sqlite_store._schema_head()
    assert str(caught.value) == (
        f"the tracking store {db} is at schema version 0584bdc529eb, not {head} (this "
        "MLflow's): an older MLflow wrote it, or an interrupt stopped its migration. Back it "
        f"up, then run `mlflow db upgrade sqlite:///{db}`; if that fails too, move it aside "
        f"(`mv {db} {db}.broken`) and relaunch"
    )


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    db.write_text("not a database\n" * 100)
    with pytest.raises(BrokenStoreError, match="is not a SQLite database"):
        sqlite_store.check(db)


def test_an_empty_file_is_replaced_by_a_whole_store(tmp_path: Path) -> None:
    db = tmp_path / "mlflow.db"
    sqlite3.connect(db).close()  # what a bare connection leaves: a file with no table
    assert sqlite_store.is_empty(db)
    sqlite_store.create(db)
    sqlite_store.check(db)
    assert not sqlite_store.is_empty(db)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mnv1_report_names_a_half_created_store(whole_store: Path, tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    db = _copy(whole_store, tmp_path)
    _drop_table(db, "trace_info")
    done = subprocess.run(
        [str(Path(sys.executable).with_name("mnv1-report")), "--experiment", "smoke", "--status"],
        cwd=tmp_path,
        env=ws.env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.startswith(f"mnv1-report: error: the tracking store {db} was left half-")
