"""How every console script stops on Ctrl-C (SIGINT) or SIGTERM: one design for all of them.

``install()`` replaces Python's SIGINT handler and the default SIGTERM action with one handler
that first *records* the signal and then raises ``Interrupted`` (a ``KeyboardInterrupt``) where
the main thread happens to be. Raising is what stops a long phase (the probe's child, dataset
preparation, a cell's worker) at once; recording is what makes the stop certain: Python cannot
deliver an exception raised inside a garbage-collector callback or some C extensions, and prints
and drops it instead (a Ctrl-C during dataset preparation was once lost in SQLAlchemy's
``_collection_gced`` that way, and the sweep ran on to exit 0). So every script also calls
``check()`` at its safe points (between phases, before each cell, before exit 0), which raises
again for a signal that was recorded but lost.

A script ends an interrupt with ``stop(...)``: one line on stderr saying what was stopped and how
to resume, and exit 128 + the signal (130 for SIGINT, 143 for SIGTERM), as a shell reports a
command a signal ended. ``guarded`` wraps a script's ``main`` that needs nothing more. ``held()``
makes one short step (a call to the tracking store) whole: the interrupt waits for its end.

``phase(name)`` marks where a script enters one of its phases (validation, the probe, the
tracking store, the dataset, a cell, the report, a trial). It is a safe point (``check()``), and
with ``MNV1_PHASE_MARKERS=1`` in the environment it prints ``mnv1-phase: <name>`` on stderr, so a
test can send its signal while the script is in that phase.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from typing import NoReturn, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

SIGNALS = (signal.SIGINT, signal.SIGTERM)
ENV_MARKERS = "MNV1_PHASE_MARKERS"


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"signal {signum}")
        self.signum = signum


_pending: int | None = None
_holding = 0
_closing = False  # after ignore(): the script is closing what it opened; nothing raises now


def _handler(signum: int, frame: object) -> None:
    global _pending
    if _pending is None:
        _pending = signum
    if _holding:
        return  # inside held(): raised where the held span ends
    raise Interrupted(signum)


def install() -> None:
    """Take SIGINT and SIGTERM over for this process (call once, in ``main``, before any work).

    A SIGINT that is ignored on entry (a command started in the background by a shell without
    job control, ``nohup``) stays ignored, as Python itself leaves it.
    """
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    sys.unraisablehook = _unraisable


def _unraisable(hook: sys.UnraisableHookArgs) -> None:
    """An interrupt Python could not raise (inside a GC callback, a finalizer) is not printed as
    a traceback: it is recorded, and the next ``check()`` raises it where it can be handled."""
    if isinstance(hook.exc_value, KeyboardInterrupt):
        return
    sys.__unraisablehook__(hook)


def phase(name: str) -> None:
    """Entering phase ``name``: a safe point, and a marker line for tests (``ENV_MARKERS``)."""
    check()
    if os.environ.get(ENV_MARKERS):
        print(f"mnv1-phase: {name}", file=sys.stderr, flush=True)


def pending() -> int | None:
    """The signal recorded so far, if any."""
    return _pending


def check() -> None:
    """A safe point: raise ``Interrupted`` if a signal arrived, even one whose exception was
    lost on the way (see the module docstring)."""
    if _pending is not None and not _closing:
        raise Interrupted(_pending)


def signum_of(exc: BaseException) -> int:
    """The signal behind an interrupt: the recorded one, else the exception's, else SIGINT (a
    ``KeyboardInterrupt`` from Python's own handler)."""
    if _pending is not None:
        return _pending
    return exc.signum if isinstance(exc, Interrupted) else signal.SIGINT


def exit_code(signum: int) -> int:
    return 128 + signum


@contextlib.contextmanager
def held() -> Iterator[None]:
    """Defer the interrupt to the end of the block (one call to the tracking store): an
    exception raised in the middle of SQLAlchemy's fetch makes it log its own cleanup error with
    a traceback, and could cut a write in two. Only where ``install`` took the signals over; a
    process with Python's or the default handlers (a cell's worker) is untouched."""
    global _holding
    before = _pending
    _holding += 1
    try:
        yield
    finally:
        _holding -= 1
    # Only a signal that arrived during the block raises here: one already pending is being
    # handled (this may be a store call that closes a run on the way out).
    if not _holding and before is None and _pending is not None and not _closing:
        raise Interrupted(_pending)


def ignore() -> None:
    """Ignore further signals while the script closes what it opened (runs, files): a second
    Ctrl-C there would leave them half-closed."""
    global _closing
    _closing = True
    for s in SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def stop(script: str, what: str, resume: str, signum: int) -> NoReturn:
    """End the script after an interrupt: one line, no traceback, exit 128 + ``signum``."""
    line = f"\n{script}: interrupted; {what}."
    if resume:
        line += f" {resume}"
    print(line, file=sys.stderr, flush=True)
    sys.exit(exit_code(signum))


def guarded(script: str, what: str, resume: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a console script's ``main`` that needs nothing closed on an interrupt beyond what
    its own ``with`` and ``finally`` blocks close: ``install`` first, and a ``KeyboardInterrupt``
    out of it ends as ``stop(script, what, resume, ...)``."""

    def wrap(main: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(main)
        def guarded_main(*args: P.args, **kwargs: P.kwargs) -> R:
            install()
            try:
                result = main(*args, **kwargs)
                check()
                return result
            except KeyboardInterrupt as exc:
                ignore()
                stop(script, what, resume, signum_of(exc))

        return guarded_main

    return wrap
