"""``mnv1-ui``: the MLflow UI on the project's tracking store, on this machine only.

    mnv1-ui                                   the store of $MLFLOW_TRACKING_URI, else ./mlflow.db
    mnv1-ui --tracking-uri sqlite:///runs/mlflow.db --port 5001

It runs ``mlflow server`` bound to 127.0.0.1 (never to every interface: the UI has no login and
can delete runs), with MLflow's GenAI job runner off (see ``mnv1.tracking.ui.server_env``), as a
child in its own process group: Ctrl-C or SIGTERM stops that whole group (the server, its
workers, any ``huey`` consumer) and ends with exit 130 / 143 and one line. Every
sweep ends by printing the URL of its runs on this UI. A tracking server (``http://...``) serves
its own UI, so for one this command only says where it is.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mnv1 import interrupt
from mnv1.cli import VERBOSE_FLAG, VERBOSE_HELP, quiet_tensorflow

# How long the server's group gets to exit after SIGTERM before it is killed.
STOP_GRACE_SECONDS = 10.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnv1-ui", description="Serve the MLflow UI on the project's tracking store."
    )
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="tracking store (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )
    parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default 5000)")
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    return parser


def _stop_group(pgid: int) -> None:
    """SIGTERM to the server's process group, SIGKILL to whatever is left after the grace, and
    wait until the group is empty (a re-parented ``huey`` consumer counts too)."""
    for sig, grace in ((signal.SIGTERM, STOP_GRACE_SECONDS), (signal.SIGKILL, STOP_GRACE_SECONDS)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pgid, os.WNOHANG)  # reap the server itself (our child)
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def main(argv: Sequence[str] | None = None) -> int:
    quiet_tensorflow(argv)  # first: before anything below imports TensorFlow
    interrupt.install()
    args = _parser().parse_args(argv)
    from mnv1.tracking import ui
    from mnv1.tracking.sqlite_store import BrokenStoreError
    from mnv1.tracking.store import check_store, sqlite_path
    from mnv1.tracking.uri import is_http, redact, resolve_uri

    uri = resolve_uri(args.tracking_uri)
    port = ui.UI_PORT if args.port is None else args.port
    if not 0 < port < 65536:
        print(f"mnv1-ui: --port is {port}; allowed: 1 to 65535", file=sys.stderr)
        return 2
    if is_http(uri):
        print(f"mnv1-ui: {redact(uri)} is a tracking server; it serves its own UI there")
        return 0
    db = sqlite_path(uri)
    if db is not None and not db.exists():
        print(
            f"mnv1-ui: there is no store at {db} yet; run a sweep first "
            "(`make demo`) or pass --tracking-uri",
            file=sys.stderr,
        )
        return 2
    try:
        check_store(uri)
    except BrokenStoreError as exc:
        print(f"mnv1-ui: {exc}", file=sys.stderr)
        return 3
    # The mlflow script installed beside this interpreter (the project's virtualenv), else PATH.
    local = Path(sys.executable).with_name("mlflow")
    command = ui.server_command(uri, port=port)
    command[0] = str(local) if local.exists() else (shutil.which("mlflow") or "mlflow")
    print(f"mnv1-ui: MLflow UI on {redact(uri)} at {ui.ui_base(uri, port)} (Ctrl-C stops it)")
    sys.stdout.flush()
    server: subprocess.Popen[bytes] | None = None
    try:
        # Its own process group: this process stops the server and all it started, in order,
        # whichever signal reached whom.
        server = subprocess.Popen(command, env=ui.server_env(dict(os.environ)), process_group=0)
        code = server.wait()
        interrupt.check()
        return code
    except KeyboardInterrupt as exc:
        interrupt.ignore()
        if server is not None:
            _stop_group(server.pid)
        interrupt.stop(
            "mnv1-ui",
            "the MLflow UI server was stopped",
            "Start it again with the same command",
            interrupt.signum_of(exc),
        )


if __name__ == "__main__":
    sys.exit(main())
