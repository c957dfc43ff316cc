"""``mnv1.interrupt``: a signal is recorded before it is raised, so one that Python drops (raised
inside a garbage-collector callback, as once inside SQLAlchemy's ``_collection_gced`` during
dataset preparation) still stops the command at its next safe point."""

from __future__ import annotations

import gc
import os
import signal
import sys
import weakref
from collections.abc import Iterator

import pytest

from mnv1 import interrupt


@pytest.fixture
def installed() -> Iterator[None]:
    """``interrupt.install()`` for one test; pytest's own handlers and hook come back after."""
    saved = {s: signal.getsignal(s) for s in interrupt.SIGNALS}
    hook = sys.unraisablehook
    interrupt.install()
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        sys.unraisablehook = hook
        interrupt._pending = None


class _Payload:
    pass


def test_an_interrupt_raised_inside_a_gc_callback_is_not_lost(
    installed: None, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []

    def callback(ref: object) -> None:
        # The signal arrives while Python runs this callback: its exception cannot propagate.
        os.kill(os.getpid(), signal.SIGTERM)
        seen.append("after the signal")  # the handler runs here, and raises inside the callback

    payload = _Payload()
    ref = weakref.ref(payload, callback)
    del payload
    gc.collect()
    assert ref() is None
    assert seen == []  # the callback was cut off by the interrupt, which Python then dropped
    assert interrupt.pending() == signal.SIGTERM
    assert "Traceback" not in capsys.readouterr().err  # dropped silently, not printed
    with pytest.raises(interrupt.Interrupted) as caught:
        interrupt.check()  # the next safe point raises it again
    assert caught.value.signum == signal.SIGTERM
    assert interrupt.exit_code(interrupt.signum_of(caught.value)) == 143


def test_a_phase_is_a_safe_point_and_prints_its_marker_when_asked(
    installed: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(interrupt.ENV_MARKERS, "1")
    interrupt.phase("data")
    assert capsys.readouterr().err == "mnv1-phase: data\n"
    monkeypatch.delenv(interrupt.ENV_MARKERS)
    interrupt.phase("cell")
    assert capsys.readouterr().err == ""
    interrupt._pending = signal.SIGINT
    with pytest.raises(interrupt.Interrupted):
        interrupt.phase("report")


def test_stop_prints_one_line_and_exits_128_plus_the_signal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as caught:
        interrupt.stop("mnv1-x", "nothing was written", "Run it again", signal.SIGTERM)
    assert caught.value.code == 143
    assert capsys.readouterr().err == "\nmnv1-x: interrupted; nothing was written. Run it again\n"


def test_held_defers_the_signal_to_the_end_of_the_block(installed: None) -> None:
    done = []
    with pytest.raises(interrupt.Interrupted) as caught, interrupt.held():
        os.kill(os.getpid(), signal.SIGINT)
        done.append("the block ran to its end")
    assert done == ["the block ran to its end"]
    assert caught.value.signum == signal.SIGINT
    assert interrupt.exit_code(interrupt.signum_of(caught.value)) == 130
