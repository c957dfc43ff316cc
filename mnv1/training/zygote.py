"""The warm zygote: imports the worker's modules once, then forks one worker process per run.

``python -m mnv1.training.zygote FD`` is started by an orchestrating process (``mnv1.sweep.warm``)
at its first cell, with one end of a Unix socket pair as ``FD``. It imports what ``python -m
mnv1.training.worker`` imports before it trains (the worker, bootstrap and run modules, and with
them Python's standard library, TensorFlow, Keras and MLflow; ``PRELOAD``), **runs no TensorFlow op
and initialises no device**, says hello, and then serves spawn requests (``mnv1.zygote_wire``): for
each it forks a child that takes the request's stdout, stderr, working directory and environment and
runs exactly what the worker's ``__main__`` runs (``mnv1.training.worker.process_main`` with the
request's arguments; or, asked for the plan's probe, ``mnv1.training.probe.process_main``, so the
probe starts as the cells will). So every run still trains in a process of its own
(tensorflow/tensorflow#61314) whose ``bootstrap`` configures devices, thread pools and GPU memory
before they exist, but without paying the interpreter's start and those imports again. The zygote
reaps its children and reports each one's exit status (minus the signal for a death by signal, as
``subprocess`` does).

Fork safety. Forking copies only the calling thread; a lock held by another thread at that moment
stays locked forever in the child. After ``PRELOAD`` the zygote has four threads on this
project's CPU build (TensorFlow 2.21, Python 3.11, counted in ``/proc/self/task`` on a 2-vCPU
host): its main thread, one OpenBLAS pool thread each for NumPy's and SciPy's OpenBLAS (cores − 1
each; SciPy and pyarrow come in with TensorFlow's imports), and ``jemalloc_bg_thd``, the purge
thread of the jemalloc that pyarrow bundles. None of them can leave a lock behind:

* OpenBLAS registers a ``pthread_atfork`` handler that shuts its pool down before every fork
  (measured: the zygote has two threads right after its first fork, its main thread and
  jemalloc's); the child starts its own pool at its first BLAS call;
* jemalloc's own ``pthread_atfork`` handlers take every allocator lock, its background-thread
  lock included, before the fork and reset them in the child, where background purging starts
  disabled;
* no Python thread other than the main one exists (``fork_problem`` refuses to serve otherwise:
  a Python thread could hold the import lock or a logging lock).

No TensorFlow op runs before the fork either: the eager context (TensorFlow's devices, thread
pools, and CUDA where there is a GPU, which cannot survive a fork) does not exist yet
(``fork_problem`` checks it too). TensorFlow's start-up device query, which ``mnv1.native_log``
runs at import to filter its lines, is left to each child, where bootstrap runs it after the
child's environment (its ``CUDA_VISIBLE_DEVICES``) is set. After the imports the zygote
collects and freezes its objects (``gc.freeze``), so the children's collections do not walk (and
copy-on-write) the imported modules.

Lifetime. The zygote follows its orchestrator through the control socket, which only the
orchestrator holds: end of file there (the orchestrator closed it, exited, or was killed, even by
SIGKILL) makes the zygote SIGTERM its children, wait ``STOP_GRACE_SECONDS`` for them (then
SIGKILL) and exit. (Not ``PR_SET_PDEATHSIG``: Linux sends it when the *thread* that started the
zygote ends, and an orchestrator may start it from a thread that ends before the process.) Each
child arms ``PR_SET_PDEATHSIG`` on the zygote (``ENV_PARENT_PID``; the zygote is single-threaded)
as its first step, so a killed zygote takes its children along. The zygote ignores SIGINT: a
Ctrl-C reaches the orchestrator and the worker (both in the terminal's process group, as is the
zygote), and the orchestrator then closes the zygote. Its children get SIGINT back as the zygote
found it (Python's handler, or ignored under ``nohup``), as a fresh worker would.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import importlib
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from mnv1 import native_log
from mnv1.worker_contract import ENV_PARENT_PID, EXIT_FAILED, SPAWNABLE, WORKER_MODULE
from mnv1.zygote_wire import HELLO, receive, send

# What a worker imports before it trains, in the order it does: the worker (mnv1.timing, the run
# log, the config), then, for the run log ``mlflow:RUN_ID``, MLflow and the system-metrics
# monitor, then bootstrap and the training steps (TensorFlow, Keras, the data layer, exports).
PRELOAD: tuple[str, ...] = (
    "mnv1.training.worker",
    "mnv1.tracking.runlog",
    "mnv1.tracking.system_metrics",
    "mnv1.training.bootstrap",
    "mnv1.training.run",
    # The plan's probe process (mnv1.worker_contract.PROBE_MODULE): small, on top of the above.
    "mnv1.training.probe",
)
# How long children get to exit on SIGTERM when the orchestrator is gone, before SIGKILL (the
# orchestrator's own grace for a worker, mnv1.sweep.orchestrate.TERMINATE_GRACE_SECONDS).
STOP_GRACE_SECONDS = 20.0
# The select timeout: children are reaped on SIGCHLD; this only bounds a missed wake-up.
_TICK_SECONDS = 1.0
_PR_SET_NAME = 15  # from <linux/prctl.h>
ZYGOTE_NAME = "mnv1-zygote"
WORKER_NAME = "mnv1-worker"


def thread_names() -> list[str]:
    """The names of this process's threads (``/proc/self/task``), the main thread first."""
    names = []
    for task in sorted(os.listdir("/proc/self/task"), key=int):
        # A thread may end between the listing and the read.
        with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/comm") as comm:
            names.append(comm.read().strip())
    return names


def name_process(name: str) -> None:
    """Set this process's name as ``ps`` and ``top`` show it (``/proc/self/comm``): a forked worker
    keeps the zygote's command line, so its name tells the two apart."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def _devices_initialised() -> bool:
    """Whether TensorFlow's eager context exists (as ``mnv1.training.bootstrap.tf_initialised``
    asks; read here directly, because a test stand-in may replace the bootstrap module)."""
    if "tensorflow" not in sys.modules:
        return False
    from tensorflow.python.eager import context  # no public equivalent

    return getattr(context.context(), "_context_handle", None) is not None


def fork_problem() -> str | None:
    """Why this process must not fork workers, or None when it may."""
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if others:
        return f"Python threads besides the main one: {', '.join(others)}"
    if _devices_initialised():
        return "TensorFlow initialised its devices during the imports"
    return None


# What TensorFlow's import wrote on stderr in the zygote: a fresh worker filters its import's lines
# and its device query's together (the device query's cuInit error is noise only where the import
# said there is no driver), and so does each child, with these lines in front of its own.
_IMPORT_LINES: list[str] = []


def _import_noise(lines: Sequence[str]) -> list[bool]:
    _IMPORT_LINES[:] = lines
    return native_log.start_up_noise(lines)


def _query_noise(lines: Sequence[str]) -> list[bool]:
    return native_log.start_up_noise([*_IMPORT_LINES, *lines])[len(_IMPORT_LINES) :]


def preload(modules: Sequence[str] = PRELOAD) -> None:
    """Import ``modules``; TensorFlow's start-up lines filtered as the worker filters them."""
    quiet = native_log.quiet_requested()
    with native_log.filtered_stderr(_import_noise) if quiet else _nothing():
        for name in modules:
            importlib.import_module(name)


@contextlib.contextmanager
def _nothing() -> Any:
    yield


def _exit_code(exc: SystemExit) -> int:
    """The status a ``SystemExit`` gives a process, as the interpreter computes it."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return EXIT_FAILED


class Server:
    """The zygote's loop: spawn requests on ``control``, SIGCHLD, end of file."""

    def __init__(self, control: socket.socket, child_sigint: Any) -> None:
        self.control = control
        self.child_sigint = child_sigint
        self.children: dict[int, socket.socket] = {}  # pid -> its request's socket
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)

    def serve(self) -> None:
        """Serve until the orchestrator's end of the control socket closes."""
        while True:
            watched = [self.control.fileno(), self.wake_r]
            ready, _, _ = select.select(watched, [], [], _TICK_SECONDS)
            if self.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.wake_r, 512):
                        pass
            self.reap()
            if self.control.fileno() in ready:
                message, fds = receive(self.control)
                if message is None:
                    break
                self.spawn(message, fds)
        self.stop_children()

    def spawn(self, request: dict[str, Any], fds: list[int]) -> None:
        conn = socket.socket(fileno=fds[0])
        stdout_fd, stderr_fd = fds[1], fds[2]
        problem = fork_problem()
        if problem is not None:
            self._answer(conn, {"error": f"the zygote cannot fork: {problem}"})
            conn.close()
        else:
            try:
                zygote = os.getpid()
                pid = os.fork()
                if pid == 0:
                    conn.close()  # the zygote answers on it, not the worker
                    self._child(request, stdout_fd, stderr_fd, zygote)
            except OSError as err:
                self._answer(conn, {"error": f"fork failed: {err}"})
                conn.close()
            else:
                self.children[pid] = conn
                self._answer(conn, {"pid": pid})
        os.close(stdout_fd)
        os.close(stderr_fd)

    @staticmethod
    def _answer(conn: socket.socket, message: dict[str, Any]) -> None:
        # The orchestrator may have gone between its request and this answer.
        with contextlib.suppress(OSError):
            send(conn, message)

    def reap(self) -> None:
        """Report every child that has ended: its exit code, or minus its signal."""
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is not None:
                self._answer(conn, {"returncode": os.waitstatus_to_exitcode(status)})
                conn.close()

    def stop_children(self) -> None:
        """The orchestrator is gone: end every child (SIGTERM, then SIGKILL after the grace)."""
        for signum, grace in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, 5.0)):
            for pid in list(self.children):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
            deadline = time.monotonic() + grace
            while self.children and time.monotonic() < deadline:
                self.reap()
                time.sleep(0.05)

    def _child(
        self, request: dict[str, Any], stdout_fd: int, stderr_fd: int, zygote: int
    ) -> NoReturn:
        """In the forked child: become the requested worker; never returns to the loop."""
        try:
            self._detach()
            os.dup2(stdout_fd, 1)
            os.dup2(stderr_fd, 2)
            os.close(stdout_fd)
            os.close(stderr_fd)
            become_worker(request, zygote)
        except BaseException:  # nothing here may return into the zygote's loop
            with contextlib.suppress(BaseException):
                traceback.print_exc()
                sys.stderr.flush()
        os._exit(EXIT_FAILED)

    def _detach(self) -> None:
        """Drop what belongs to the zygote: its signal set-up, its sockets and its pipe."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, self.child_sigint)
        self.control.close()
        for conn in self.children.values():
            conn.close()
        os.close(self.wake_r)
        os.close(self.wake_w)


def become_worker(request: dict[str, Any], zygote: int) -> NoReturn:
    """Take the request's directory, environment and arguments, and run the main of its module
    (the worker's unless the request names another of ``SPAWNABLE``)."""
    name = request.get("module", WORKER_MODULE)
    if name not in SPAWNABLE:  # the socket is this user's own, but a zygote runs only its mains
        raise ValueError(f"a zygote runs {', '.join(SPAWNABLE)}; asked for {name!r}")
    name_process(WORKER_NAME)
    os.chdir(request["cwd"])
    # Variables read from here on (CUDA_VISIBLE_DEVICES at the device query, MLFLOW_TRACKING_URI,
    # the spawn time) are the request's; os.environ writes through to the C environment.
    os.environ.clear()
    os.environ.update(request["env"])
    os.environ[ENV_PARENT_PID] = str(zygote)
    # As the interpreter sets them for ``python -m <module>`` run from ``cwd``.
    module = importlib.import_module(name)
    from mnv1.training import worker

    sys.argv = [str(module.__file__), *request["argv"]]
    sys.path[0] = os.getcwd()
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=os.isatty(1))  # type: ignore[union-attr]
    _quiet_first_device_query()
    process_main: Callable[[list[str]], NoReturn] = module.process_main
    try:
        process_main(list(request["argv"]))
    except SystemExit as exc:  # argparse's usage error (exit 2), as a fresh worker exits
        worker.exit_now(_exit_code(exc))


def _quiet_first_device_query() -> None:
    """Filter the lines of this child's first device query (cuInit, where bootstrap first lists
    the GPUs), as ``mnv1.native_log`` filters a fresh worker's import and query together.

    The query itself stays where a fresh worker's runs (in bootstrap, timed as the import phase):
    only ``tf.config.list_physical_devices`` is wrapped, for its first call.
    """
    tf = sys.modules.get("tensorflow")
    if tf is None or not native_log.quiet_requested():
        return
    config = tf.config
    original = config.list_physical_devices

    def first_query(*args: Any, **kwargs: Any) -> Any:
        config.list_physical_devices = original  # once: the platforms start only once
        with native_log.filtered_stderr(_query_noise):
            return original(*args, **kwargs)

    config.list_physical_devices = first_query


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    control = socket.socket(fileno=int(args[0]))
    name_process(ZYGOTE_NAME)
    child_sigint = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    started = time.perf_counter()
    problem: str | None
    try:
        preload()
        problem = fork_problem()
    except Exception:
        problem = f"the zygote's imports failed:\n{traceback.format_exc()}"
    hello = {
        HELLO: True,
        "pid": os.getpid(),
        "import_s": time.perf_counter() - started,
        "threads": thread_names(),
        "tensorflow": "tensorflow" in sys.modules,
        "problem": problem,
    }
    try:
        send(control, hello)
    except OSError:
        return EXIT_FAILED  # the orchestrator is already gone
    if problem is not None:
        return EXIT_FAILED
    gc.collect()
    gc.freeze()
    Server(control, child_sigint).serve()
    return 0


if __name__ == "__main__":
    # Nothing to write at exit, and tearing TensorFlow's modules down only takes time: the
    # orchestrator waits for this exit when it closes the zygote.
    code = main()
    sys.stderr.flush()
    os._exit(code)
