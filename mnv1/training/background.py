"""One call run on a thread of its own while this thread does other work.

A run's LoggedModel is written this way (``mnv1.training.run.log_end``): saving the model,
writing its input example and copying both into the store is file and database work that can
run while the export converts the model. ``wait`` joins the thread and raises what the call
raised, so a failure there fails the run as it did when the call was made in line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class InBackground:
    """``call(*args)`` on a thread started at once; ``wait()`` for its end and its error."""

    def __init__(self, call: Callable[..., Any], *args: Any, name: str) -> None:
        self._error: BaseException | None = None
        # A daemon: a worker that dies of an error elsewhere leaves without waiting for it.
        self._thread = threading.Thread(target=self._run, args=(call, args), name=name, daemon=True)
        self._thread.start()

    def _run(self, call: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            call(*args)
        except BaseException as err:  # handed to the waiting thread, which raises it
            self._error = err

    def wait(self) -> None:
        """Block until the call has ended; raise its exception if it raised one (every time)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
