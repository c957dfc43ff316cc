"""Warm workers: each cell's worker forked from a zygote instead of a fresh interpreter.

A fresh ``python -m mnv1.training.worker`` pays the interpreter's start and the imports of
TensorFlow, Keras and MLflow before it trains (``time_process_start_s`` and most of
``time_import_s``). ``start_worker`` asks a zygote (``mnv1.training.zygote``) instead: one per
orchestrating process, started at its first cell, which has imported all that once and forks one
child per cell. The child is a process of its own (tensorflow/tensorflow#61314), in this process's
group (a terminal's Ctrl-C reaches it), running the worker's own ``__main__`` with the same
arguments; what the orchestrator holds is a ``WarmProcess``, a small ``subprocess.Popen`` look-
alike (``pid``, ``stderr``, ``wait``, ``poll``, ``terminate``, ``kill``), so the stderr pump, the
tail and the exit status (a death by signal is a negative return code, KILLED) read as before.

What the imports saw is fixed in the zygote, so it is keyed on the environment: every variable
except those set per spawn (``PER_SPAWN`` and the launch's own extras, e.g. a trial's id). A
request whose environment differs (another ``TF_CPP_MIN_LOG_LEVEL``, another ``PYTHONPATH``) gets
a new zygote, the old one closed. A zygote that cannot fork safely (see its module) or whose
imports fail says why once, and its environment spawns cold from then on.

The zygote ends with this process: ``shutdown`` (registered with ``atexit``) closes its control
socket and waits for it, and if this process dies outright the socket's end of file stops it; it
ends its children first. ``distribute.warm_workers=false`` spawns cold, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any, Protocol

from mnv1.worker_contract import ENV_ORCHESTRATOR_PID, ENV_SPAWN_TIME, WORKER_MODULE
from mnv1.zygote_wire import HELLO, ZYGOTE_MODULE, receive, send, socket_pair

log = logging.getLogger(__name__)

# Set for each worker, read only after the imports (at the device query, when a store is
# opened, at the worker's first line), so they do not key the zygote.
PER_SPAWN: tuple[str, ...] = (
    ENV_SPAWN_TIME,
    ENV_ORCHESTRATOR_PID,
    "CUDA_VISIBLE_DEVICES",
    "MLFLOW_TRACKING_URI",
    # MLflow sets it in this process the first time it opens a store (its telemetry session),
    # which a sweep does after the plan's probe started the zygote; read when a child's MLflow
    # client starts, never at import.
    "_MLFLOW_TELEMETRY_SESSION_ID",
)
# How long a zygote may take to import before its first worker starts cold instead (TensorFlow's
# import takes seconds on a quiet machine, minutes on a swamped one).
HELLO_TIMEOUT_SECONDS = 600.0
# After the zygote has gone without reporting a child, how long to wait for that child to end
# (it gets SIGTERM with its parent, and the worker's own grace).
LOST_CHILD_SECONDS = 30.0


class WorkerProcess(Protocol):
    """What the orchestrator needs of a worker's process: a ``Popen`` or a ``WarmProcess``."""

    pid: int
    stderr: IO[str] | None

    def wait(self, timeout: float | None = None) -> int: ...

    def poll(self) -> int | None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class WarmProcess:
    """A worker forked by the zygote, as ``subprocess.Popen(..., stderr=PIPE, text=True)``."""

    def __init__(self, pid: int, conn: socket.socket, stderr: IO[str]) -> None:
        self.pid = pid
        self.stderr: IO[str] | None = stderr
        self.returncode: int | None = None
        self._conn = conn

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        self._conn.settimeout(timeout)
        try:
            message, _ = receive(self._conn)
        except (TimeoutError, BlockingIOError):
            raise subprocess.TimeoutExpired(WORKER_MODULE, timeout or 0.0) from None
        if message is None or "returncode" not in message:
            self.returncode = self._lost()
        else:
            self.returncode = int(message["returncode"])
        self._conn.close()
        return self.returncode

    def poll(self) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.wait(timeout=0)
        return None

    def send_signal(self, signum: int) -> None:
        # Only while it has not been reported ended: its pid may be reused afterwards.
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _lost(self) -> int:
        """The zygote died without reporting this child, which dies with it (SIGTERM, its
        parent-death signal): wait for it to be gone and report that signal."""
        deadline = time.monotonic() + LOST_CHILD_SECONDS
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return -signal.SIGTERM


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, reparented and not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def zygote_key(
    env: Mapping[str, str], per_spawn: Iterable[str] = ()
) -> tuple[tuple[str, str], ...]:
    """What a zygote's imports may have read: the environment but for per-spawn variables."""
    skip = set(PER_SPAWN) | set(per_spawn)
    return tuple(sorted((k, v) for k, v in env.items() if k not in skip))


class Zygote:
    """One zygote process and its control socket; ``spawn`` forks a worker from it."""

    def __init__(self, env: Mapping[str, str], key: tuple[tuple[str, str], ...]) -> None:
        self.key = key
        self.control, theirs = socket_pair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", ZYGOTE_MODULE, str(theirs.fileno())],
                env=dict(env),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        except BaseException:
            self.control.close()
            raise
        finally:
            theirs.close()
        self.hello: dict[str, Any] | None = None
        self.owner = os.getpid()
        self._lock = threading.Lock()

    def ready(self, timeout: float = HELLO_TIMEOUT_SECONDS) -> dict[str, Any]:
        """The zygote's hello once its imports are done (``problem`` None when it can serve)."""
        with self._lock:
            if self.hello is None:
                self.control.settimeout(timeout)
                try:
                    message, _ = receive(self.control)
                except (TimeoutError, OSError) as err:
                    message = {"problem": f"no hello from the zygote: {err}"}
                finally:
                    self.control.settimeout(None)
                if message is None:
                    message = {"problem": "the zygote exited during its imports"}
                elif not message.get(HELLO):
                    message = {"problem": f"the zygote's first message is no hello: {message}"}
                self.hello = message
            return self.hello

    def alive(self) -> bool:
        return self.process.poll() is None

    def spawn(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        module: str = WORKER_MODULE,
        cwd: str | None = None,
    ) -> WarmProcess:
        """Fork ``python -m MODULE ARGV`` with ``env``, in ``cwd`` (default: this directory)."""
        conn, theirs = socket_pair()
        read_fd, write_fd = os.pipe()
        stdout_fd = _stdout_fd()
        request = {"argv": list(argv), "env": dict(env), "cwd": cwd or os.getcwd()}
        if module != WORKER_MODULE:
            request["module"] = module
        try:
            with self._lock:
                send(self.control, request, (theirs.fileno(), stdout_fd, write_fd))
            reply, _ = receive(conn)
        except BaseException:
            conn.close()
            os.close(read_fd)
            raise
        finally:
            # The zygote has its own copies now, and the worker will: only they keep the
            # pipe's write end open, so the pump sees end of file when the worker is gone.
            theirs.close()
            os.close(write_fd)
            os.close(stdout_fd)
        if reply is None or "pid" not in reply:
            conn.close()
            os.close(read_fd)
            why = "the zygote exited" if reply is None else reply.get("error")
            raise OSError(f"could not fork a warm worker: {why}")
        stderr = open(read_fd, encoding="utf-8", errors="replace")  # noqa: SIM115 (the pump's)
        return WarmProcess(int(reply["pid"]), conn, stderr)

    def close(self) -> None:
        """End the zygote (and any child it still has): end of file on its control socket."""
        self.control.close()
        if self.hello is None:
            # Still importing (an interrupt during the first cell's start): it has no child yet,
            # and nothing to finish; do not make the interrupted launch wait for its imports.
            self.process.kill()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _stdout_fd() -> int:
    """A copy of this process's stdout for the worker, as a cold worker inherits it (or
    /dev/null where this process has none)."""
    try:
        return os.dup(1)
    except OSError:
        return os.open(os.devnull, os.O_WRONLY)


_lock = threading.Lock()
_current: Zygote | None = None
_refused: dict[tuple[tuple[str, str], ...], str] = {}  # environments that spawn cold, and why
_registered = False


def _zygote_for(env: Mapping[str, str], key: tuple[tuple[str, str], ...]) -> Zygote | None:
    """The zygote for ``key``, started (or replaced) as needed; None where it cannot serve."""
    global _current, _registered
    with _lock:
        if _current is not None and _current.owner != os.getpid():
            _current = None  # a forked copy of the orchestrator: the zygote is its parent's
        if _current is not None and (_current.key != key or not _current.alive()):
            changed = sorted({name for name, _ in set(_current.key) ^ set(key)})
            log.debug("a new zygote: %s", changed or "the last one ended")
            _current.close()
            _current = None
        if _current is None:
            if key in _refused:
                return None
            if not _registered:
                atexit.register(shutdown)
                _registered = True
            _current = Zygote(env, key)
        zygote = _current
        hello = zygote.ready()
        if hello.get("problem"):
            _refused[key] = str(hello["problem"])
            zygote.close()
            _current = None
            log.warning("warm workers off here, each cell starts cold: %s", hello["problem"])
            return None
        return zygote


def start_worker(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    warm: bool,
    per_spawn: Iterable[str] = (),
    module: str = WORKER_MODULE,
    cwd: str | None = None,
) -> WorkerProcess:
    """Start ``python -m MODULE ARGV`` (a cell's worker unless ``module`` names the probe) with
    ``env`` and its stderr piped, in ``cwd``: forked from the zygote when ``warm`` (and it can
    serve), else as a fresh interpreter."""
    zygote = _zygote_for(env, zygote_key(env, per_spawn)) if warm else None
    if zygote is not None:
        return zygote.spawn(argv, env, module, cwd)
    return subprocess.Popen(
        [sys.executable, "-m", module, *argv],
        cwd=cwd,
        env=dict(env),
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )


def prestart(env: Mapping[str, str], per_spawn: Iterable[str] = ()) -> dict[str, Any]:
    """Start this process's zygote for ``env`` now and wait for its imports; its hello
    (``problem`` set where it cannot serve). A benchmark times warm forks without the start."""
    key = zygote_key(env, per_spawn)
    zygote = _zygote_for(env, key)
    return {"problem": _refused[key]} if zygote is None else zygote.ready()


def serving(env: Mapping[str, str], per_spawn: Iterable[str] = ()) -> bool:
    """Whether this process's zygote for ``env`` is up now, so the next warm start pays no
    zygote start (the plan counts that start once per launch where it is not)."""
    key = zygote_key(env, per_spawn)
    with _lock:
        z = _current
        return z is not None and z.owner == os.getpid() and z.key == key and z.alive()


def current() -> Zygote | None:
    """This process's zygote, if one runs."""
    return _current


def shutdown() -> None:
    """Close this process's zygote, if any, and wait for it to end (also run at exit)."""
    global _current
    with _lock:
        if _current is not None and _current.owner == os.getpid():
            _current.close()
        _current = None
