"""Interrupting a console script in a given phase, as a terminal or a scheduler does, and checking
what it leaves behind.

The script runs in its own session with ``MNV1_PHASE_MARKERS=1`` (``mnv1.interrupt.phase``
prints ``mnv1-phase: <name>`` on entering each phase); the signal goes to the whole process group
as soon as the awaited line appears. Afterwards: the exit status 128 + signal, one
"interrupted" line, no traceback, no process of the session left, no ``mnv1-*`` temporary
directory left in the launch's own ``TMPDIR``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from server_support import _in_session

ENV_MARKERS = "MNV1_PHASE_MARKERS"


def default_sigint() -> None:
    """A test run started in the background inherits SIGINT ignored; a terminal's command does
    not. Restore the default, in the child, before it starts."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def marker(phase: str) -> str:
    return f"mnv1-phase: {phase}"


@dataclass
class Stopped:
    output: str
    returncode: int
    signum: int


def interrupt_at(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    line: str,
    signum: int,
    timeout: float = 400,
) -> Stopped:
    """Run ``command`` until a line of its output contains ``line``, then send ``signum`` to its
    process group; the output (stdout and stderr together) and the exit status."""
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env={**env, ENV_MARKERS: "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=default_sigint,
    )
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            text = proc.stdout.readline()
            if not text:
                proc.wait()
                raise AssertionError(f"ended ({proc.returncode}) before {line!r}:\n{''.join(seen)}")
            seen.append(text)
            if line in text:
                break
            assert time.monotonic() < deadline, f"no {line!r} in time:\n{''.join(seen)}"
        os.killpg(proc.pid, signum)
        rest, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    output = "".join(seen) + rest
    left = _in_session(proc.pid)
    assert not left, f"processes left: {[p.cmdline() for p in left]}\n{output}"
    return Stopped(output, proc.returncode, signum)


def assert_stopped_cleanly(stopped: Stopped, script: str, tmp: Path) -> None:
    """Exit 130 / 143, one interrupted line, no traceback, no temporary directory left."""
    output = stopped.output
    assert stopped.returncode == 128 + stopped.signum, output
    assert "Traceback" not in output, output
    assert output.count(f"{script}: interrupted; ") == 1, output
    assert list(tmp.glob("mnv1-*")) == [], output
