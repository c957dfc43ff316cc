"""``mnv1-plan --refresh-probe``: the probe is measured again instead of read from the cache, and
the new measurement replaces the cached one. The cache is seeded with hand-made figures (as in
``tests/test_plan_cli.py``) and the measurement is a stand-in that returns other figures, so what
the plan prints says which of the two it used."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from sweep_support import Workspace
from test_plan_cli import seed_probe

from mnv1.cli import plan as plan_cli
from mnv1.config import RunConfig
from mnv1.sweep import probe as probing
from mnv1.sweep.plan import Probe

GRID = ["experiment=smoke"]


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "launch").mkdir()
    return Workspace(tmp_path / "launch")


def plan_in_process(
    ws: Workspace, probe_dir: Path, monkeypatch: pytest.MonkeyPatch, *flags: str
) -> tuple[int, list[str]]:
    """``mnv1-plan [FLAGS] experiment=smoke`` in this process, its measurement replaced by a
    stand-in; the exit status and the hosts of the probes it measured."""
    measured: list[str] = []

    def measure(cells: Sequence[RunConfig], say: object = print) -> Probe:
        cached = probing.cached_probe(cells)
        assert cached is not None  # seeded: only --refresh-probe gets here
        measured.append("remeasured")
        return Probe(
            host="remeasured",
            key=probing.probe_key(cells),
            measured_at="now",
            points=cached.points,
            mult_adds=cached.mult_adds,
        )

    monkeypatch.setenv(probing.ENV_PROBE_DIR, str(probe_dir))
    monkeypatch.setattr(probing, "measure", measure)
    with pytest.raises(SystemExit) as stopped:
        plan_cli.main([*flags, *GRID, f"data.data_dir={ws.data_dir}"])
    assert isinstance(stopped.value.code, int)
    return stopped.value.code, measured


def test_refresh_probe_measures_again_and_replaces_the_cache(
    ws: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    probe_dir = tmp_path / "probe"
    seed_probe(ws, probe_dir, monkeypatch, *GRID, f"data.data_dir={ws.data_dir}")
    [cache] = probe_dir.glob("*.json")

    code, measured = plan_in_process(ws, probe_dir, monkeypatch)
    assert (code, measured) == (0, [])
    assert "probe on seeded (cached, then)" in capsys.readouterr().out

    code, measured = plan_in_process(ws, probe_dir, monkeypatch, "--refresh-probe")
    assert (code, measured) == (0, ["remeasured"])
    assert "probe on remeasured (measured now, now)" in capsys.readouterr().out
    assert json.loads(cache.read_text())["host"] == "remeasured"

    # The next plan reads the new measurement from the cache.
    code, measured = plan_in_process(ws, probe_dir, monkeypatch)
    assert (code, measured) == (0, [])
    assert "probe on remeasured (cached, now)" in capsys.readouterr().out


def test_a_launch_that_finds_the_grid_being_probed_waits_and_reads_that_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two launches of one grid at once on one machine pay one probe: while the first holds the
    # grid's lock (measuring), the second waits, then reads what the first wrote.
    import threading

    import filelock
    from probe_support import write_probe

    from mnv1.hydra_app.grid import check_command

    probe_dir = tmp_path / "probe"
    monkeypatch.setenv(probing.ENV_PROBE_DIR, str(probe_dir))
    cells = [c.config for c in check_command([*GRID], multirun=True).cells]
    measured: list[str] = []
    monkeypatch.setattr(probing, "measure", lambda *_a, **_k: measured.append("measured"))
    probe_dir.mkdir()
    found: list[Probe] = []
    lock = filelock.FileLock(str(probe_dir / f".{probing.probe_key(cells)}.lock"))
    # The second launch says when it reaches the probe's lock, so the test knows it is waiting
    # there (not merely slow to start) without watching a clock.
    reached = threading.Event()
    real_lock = filelock.FileLock

    def announcing_lock(*args: object, **kwargs: object) -> filelock.BaseFileLock:
        reached.set()
        return real_lock(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(probing.filelock, "FileLock", announcing_lock)
    with lock:
        second = threading.Thread(target=lambda: found.append(probing.get_probe(cells)))
        second.start()
        assert reached.wait(timeout=60), "the second launch never reached the probe's lock"
        assert second.is_alive() and found == []  # waiting on the first launch's probe
        write_probe(probe_dir, cells)  # the first launch's result
    second.join(timeout=60)
    assert not second.is_alive()
    assert measured == [] and [p.host for p in found] == ["seeded"]
