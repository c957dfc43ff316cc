"""``--verbose`` on the scripts whose command line Hydra reads: it is not an override, and it
leaves TensorFlow's logging as it is for the processes the command starts. (Every script
accepting it from a new shell is in ``tests/test_claims.py``.)"""

from __future__ import annotations

import os
import signal

import pytest

from mnv1.cli import VERBOSE_FLAG, wants_verbose, without_verbose
from mnv1.cli import tune as tune_cli

LEVEL = "TF_CPP_MIN_LOG_LEVEL"


def test_verbose_is_taken_off_a_hydra_command_line_and_only_it() -> None:
    argv = ["-m", VERBOSE_FLAG, "experiment=smoke", "hydra.verbose=true"]
    assert without_verbose(argv) == ["-m", "experiment=smoke", "hydra.verbose=true"]
    assert wants_verbose([VERBOSE_FLAG]) and wants_verbose(["hydra.verbose=true"])
    assert not wants_verbose(["experiment=smoke", "--verbosity"])


def _tune(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], str | None]:
    """``mnv1-tune ARGV`` up to its search, which is replaced by a recorder of the command line
    it was given and of the log level its trial processes would inherit."""
    seen: list[tuple[list[str], str | None]] = []

    def run(plan: tune_cli.Plan, arguments: list[str], launch: object = None) -> int:
        seen.append((list(arguments), os.environ.get(LEVEL)))
        return 0

    monkeypatch.setattr(tune_cli, "run", run)
    monkeypatch.delenv(LEVEL, raising=False)
    handler = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as stopped:
            tune_cli.main(argv)
    finally:
        signal.signal(signal.SIGTERM, handler)  # main installs its own
    assert stopped.value.code == 0
    [result] = seen
    return result


def test_tune_verbose_is_no_override_and_keeps_tensorflow_lines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arguments, level = _tune([VERBOSE_FLAG, "experiment=smoke"], monkeypatch)
    assert arguments == ["experiment=smoke"] and level is None
    arguments, level = _tune(["experiment=smoke"], monkeypatch)
    assert arguments == ["experiment=smoke"] and level == "2"
