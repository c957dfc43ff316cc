"""Helpers for tests that start real servers (``mlflow server``, PostgreSQL, Chromium): a free
loopback port, a process started in its own session, and a stop that leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil

LOOPBACK = "127.0.0.1"
# Debian keeps each PostgreSQL major version's server programs in <root>/<version>/bin, off the
# PATH.
PG_ROOT = Path("/usr/lib/postgresql")
PG_PROGRAMS = ("initdb", "pg_ctl", "createdb")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def mlflow_command() -> str:
    """The mlflow script of the interpreter running the tests (the project's virtualenv)."""
    local = Path(sys.executable).with_name("mlflow")
    return str(local) if local.exists() else (shutil.which("mlflow") or "mlflow")


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _in_session(sid: int) -> list[psutil.Process]:
    """Every live process of session ``sid``: also those whose parent died and that were
    re-parented away from the tree (MLflow's ``huey`` consumers outlive a killed server)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            continue
    return found


def stop_session(proc: subprocess.Popen[str], grace: float = 10.0) -> None:
    """Stop ``proc`` (started with ``start_new_session=True``) and every process of its session:
    SIGTERM to the group, then SIGKILL to whatever is left; raises if anything survives."""
    sid = proc.pid
    remembered = _tree(sid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(sid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and _in_session(sid):
        time.sleep(0.2)
    leftovers = {p.pid: p for p in [*remembered, *_in_session(sid)]}
    for p in leftovers.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    _, alive = psutil.wait_procs(list(leftovers.values()), timeout=grace)
    alive += _in_session(sid)
    assert not alive, f"processes left running: {[p.pid for p in alive]}"


def wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    """Wait until ``url`` answers (any HTTP status), failing early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode} before answering:\n{out}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def mlflow_server(
    args: Sequence[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[str]:
    """``mlflow server ARGS --host 127.0.0.1 --port PORT`` in its own session; yields its URL and
    stops it (and every process it started) on exit."""
    url = f"http://{LOOPBACK}:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [mlflow_command(), "server", *args, "--host", LOOPBACK, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
    try:
        try:
            wait_http(f"{url}/health", proc)
        except Exception as exc:
            raise RuntimeError(f"{exc}\n{log.read_text()}") from None
        yield url
    finally:
        stop_session(proc)


def _version_key(path: Path) -> tuple[int, ...]:
    """``<root>/15/bin`` -> (15,); a folder not named as a version sorts last."""
    name = path.parent.name
    return tuple(int(p) for p in name.split(".")) if name.replace(".", "").isdigit() else (-1,)


def postgres_bin() -> Path:
    """The folder of the PostgreSQL server programs: what ``pg_config --bindir`` names when that
    holds them (a server's own pg_config), else the newest version under ``PG_ROOT``. No version
    is assumed, so the newest server Debian installs is the one the tests run."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        done = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(Path(done.stdout.strip()))
    candidates += sorted(PG_ROOT.glob("*/bin"), key=_version_key, reverse=True)
    for folder in candidates:
        if all((folder / program).exists() for program in PG_PROGRAMS):
            return folder
    raise FileNotFoundError(
        f"no PostgreSQL server found ({', '.join(PG_PROGRAMS)} in `pg_config --bindir` or "
        f"{PG_ROOT}/<version>/bin): `make test` installs it (.ci/system-deps)"
    )


def _as_postgres(*cmd: str) -> list[str]:
    """PostgreSQL refuses to run as root; run its tools as the ``postgres`` user when we are."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return list(cmd)


@contextlib.contextmanager
def postgres_cluster(database: str = "mlflow", password: str | None = None) -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port with database ``database``; yields
    its SQLAlchemy URI, then stops the cluster and deletes its files. With ``password`` the
    cluster checks it (scram-sha-256 for every connection) and the URI carries it.

    The cluster lives in a fresh directory under the system temp dir rather than under pytest's
    (which is private to the user running the tests), since the ``postgres`` user must own it.
    """
    pg_bin = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="mnv1-pg-"))
    data, sockets = root / "pgdata", root / "pgsock"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = free_port()
    env = dict(os.environ)
    auth = ["-A", "trust"]
    if password is not None:
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres")
        auth = ["-A", "scram-sha-256", f"--pwfile={pwfile}"]
        env["PGPASSWORD"] = password
    run = lambda *cmd: subprocess.run(  # noqa: E731
        _as_postgres(*cmd), check=True, capture_output=True, text=True, timeout=120, env=env
    )
    run(str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", *auth, "--no-sync")
    options = f"-h {LOOPBACK} -p {port} -k {sockets} -c fsync=off"
    run(str(pg_bin / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "pg.log"), "-w",
        "start")  # fmt: skip
    try:
        run(str(pg_bin / "createdb"), "-h", LOOPBACK, "-p", str(port), "-U", "postgres", database)
        user = "postgres" if password is None else f"postgres:{password}"
        yield f"postgresql://{user}@{LOOPBACK}:{port}/{database}"
    finally:
        subprocess.run(
            _as_postgres(str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)
