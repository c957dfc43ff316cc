"""The console scripts, one module each (``[project.scripts]`` in ``pyproject.toml``): ``train``
(``mnv1-train``), ``plan``, ``tune``, ``report``, ``costs``, ``bench`` and ``ui``, plus
``credentials`` (a password on the command line, for ``mnv1-train`` and ``mnv1-tune``). The Hydra
application they compose with is ``mnv1.hydra_app``; the cluster launchers are ``mnv1.launchers``.

This module holds what every script shares about TensorFlow's own log lines. Each script's
``main`` calls :func:`quiet_tensorflow` first, before anything of it imports TensorFlow, so its
start-up lines (``cpu_feature_guard``, ``cudart_stub``, absl's "All log messages before
absl::InitializeLog()") are silenced: ``TF_CPP_MIN_LOG_LEVEL=2`` drops TensorFlow's own INFO and
WARNING lines and keeps its errors, and ``mnv1.native_log`` filters the absl lines that variable
does not reach. Python warnings and our own log lines are untouched. The worker processes a sweep
starts inherit the setting through the environment (``mnv1.training.worker`` installs the same
filter). It is a call in ``main`` rather than an import-time effect, so importing this package
(Hydra's plugin scan imports ``mnv1.launchers``, a test imports a script) changes nothing.

``--verbose`` (every console script) or ``hydra.verbose=...`` (``mnv1-train``, ``mnv1-tune``)
leaves TensorFlow's logging as it is, and so does a ``TF_CPP_MIN_LOG_LEVEL`` the user set. The
scripts whose command line Hydra parses drop ``--verbose`` before Hydra sees it
(:func:`without_verbose`): Hydra would take it for an override.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from mnv1 import native_log

VERBOSE_FLAG = "--verbose"
VERBOSE_HELP = "show TensorFlow's own start-up and device log lines (hidden by default)"


def wants_verbose(argv: Sequence[str]) -> bool:
    """Whether the command line asks for TensorFlow's own log lines."""
    return any(a == VERBOSE_FLAG or a.lstrip("+").startswith("hydra.verbose=") for a in argv)


def without_verbose(argv: Sequence[str]) -> list[str]:
    """The command line without ``--verbose``, for a parser that does not know the flag (Hydra's
    override grammar); the flag has done its work through :func:`wants_verbose`."""
    return [a for a in argv if a != VERBOSE_FLAG]


def quiet_tensorflow(argv: Sequence[str] | None) -> None:
    """Hide TensorFlow's start-up lines in this process and its children, unless asked
    (``argv``: the script's arguments; None reads them from ``sys.argv``)."""
    argv = sys.argv[1:] if argv is None else argv
    if not wants_verbose(argv):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    native_log.install()
