"""The MLflow UI opens on a finished sweep, checked in a real browser.

The session's smoke sweep (``smoke`` in tests/conftest.py: a real sweep, which this test only
reads), then ``mnv1-ui`` (``mlflow server`` on the sweep's SQLite store) on a free loopback port,
then Debian's Chromium, headless, on the URL the sweep printed: the rendered page
must list the sweep's parent run and every cell run with its ``val_top1``, the compare page
linked from the parent's description must list the cells, and a cell's run page must show its
Datasets section and its Logged models entry. A screenshot of the runs table is saved
under the test's temp dir. Everything started (the server, its workers, Chromium and its helpers)
runs in its own session and is stopped with it.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from server_support import free_port, mlflow_command, stop_session, wait_http
from smoke_support import SMOKE_CELLS, SmokeSweep

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium(url: str, profile: Path, *action: str, budget_ms: int) -> str:
    """Load ``url`` in headless Chromium (fresh profile, no network beyond it) and return stdout.

    ``--virtual-time-budget`` lets the page run until it has been idle that long in virtual time
    (pending fetches pause the clock), so the single-page app has rendered when it returns.
    """
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1920,1080",
        f"--virtual-time-budget={budget_ms}",
        *action,
        url,
    ]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=budget_ms / 1000 + 90)
    finally:
        stop_session(proc)
    return out


def page_text(dom: str) -> str:
    """The visible text of a dumped DOM, whitespace collapsed."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)))


def shown(value: float) -> str:
    """A metric value as the UI prints it (JavaScript's number formatting)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(url: str, root: Path, expected: list[str]) -> str:
    """The page's text once every ``expected`` string is on it (a busy machine renders slower:
    up to three loads, each with a longer budget)."""
    text = ""
    for attempt, budget in enumerate((20_000, 40_000, 80_000)):
        text = page_text(chromium(url, root / f"profile{attempt}", "--dump-dom", budget_ms=budget))
        if all(item in text for item in expected):
            return text
    return text


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_printed_url_opens_the_sweep_in_a_real_browser(
    smoke: SmokeSweep, tmp_path: Path
) -> None:
    # The sweep's last launch (every cell FINISHED): what a user opens after a sweep.
    ws, done = smoke.ws, smoke.again.done
    assert done.returncode == 0, done.stdout + done.stderr
    [printed] = re.findall(r"^Runs: (\S+)", done.stdout, flags=re.M)
    assert printed.startswith("http://127.0.0.1:5000/#/experiments/")
    assert "serve the store with `make ui` or `mnv1-ui`" in done.stdout
    [parent] = ws.parents()
    children = ws.children()
    assert sorted(children) == SMOKE_CELLS
    exp = ws.client().get_experiment(parent.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"

    port = free_port()
    url = printed.replace("http://127.0.0.1:5000/", f"http://127.0.0.1:{port}/", 1)
    log = tmp_path / "ui.log"
    mnv1_ui = str(Path(sys.executable).with_name("mnv1-ui"))
    with log.open("w") as out:
        server = subprocess.Popen(
            [mnv1_ui, "--tracking-uri", ws.uri, "--port", str(port)],
            # Not the sweep's directory: the shared sweep stays as its launches left it.
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", server)
        parent_name = parent.info.run_name
        values = {name: shown(run.data.metrics["val_top1"]) for name, run in children.items()}
        text = render(url, tmp_path, [parent_name, *SMOKE_CELLS, "val_top1"])
        assert parent_name in text, text[:3000]
        for name in SMOKE_CELLS:
            assert name in text, (name, text[:3000])
        assert "val_top1" in text and "mult_adds" in text
        # Each row shows its top-1: the table lists the runs best first, values in that order.
        for name, value in values.items():
            assert value in text, (name, value, text[:3000])

        shot = tmp_path / "mlflow_ui_runs.png"
        chromium(url, tmp_path / "profile_shot", f"--screenshot={shot}", budget_ms=40_000)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
        print(f"\nscreenshot of the runs table: {shot}")

        # The parent's description links MLflow's compare page of the four cells.
        note = parent.data.tags["mlflow.note.content"]
        fragment = note.split("](#", 1)[1].split(")", 1)[0]
        compare = render(f"http://127.0.0.1:{port}/#{fragment}", tmp_path, ["Comparing 4 Runs"])
        assert "Comparing 4 Runs" in compare, compare[:3000]
        for name in SMOKE_CELLS:
            assert name in compare

        # A cell's run page: its Datasets section lists what it trained and was scored on, and
        # its Logged models entry the LoggedModel it logged.
        cell = children[SMOKE_CELLS[0]]
        page = f"http://127.0.0.1:{port}/#/experiments/{exp.experiment_id}/runs/{cell.info.run_id}"
        dataset = "mnv1_synthetic/s0_tr64_va32_c10_px64 1.0.0 train"
        run_page = render(page, tmp_path, ["Datasets", dataset, "Logged models"])
        assert re.search(rf"Datasets .*{re.escape(dataset)}", run_page), run_page[:3000]
        assert re.search(r"Logged models .*\bmodel\b", run_page), run_page[:3000]
    finally:
        stop_session(server)
    assert "Uvicorn running on http://127.0.0.1:" in log.read_text()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_stopping_a_server_ends_the_huey_consumers_it_started(tmp_path: Path) -> None:
    """MLflow's default server (job execution on, as without ``mnv1-ui``) starts a job runner and
    ``huey`` consumers that outlive a killed server process; stopping its session ends them all."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"}
    log = tmp_path / "server.log"
    command = [mlflow_command(), "server", "--backend-store-uri", store, "--host", "127.0.0.1"]
    with log.open("w") as out:
        server = subprocess.Popen(
            [*command, "--port", str(port), "--workers", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", server)
        deadline = time.monotonic() + 120
        consumers: list[psutil.Process] = []
        while not consumers and time.monotonic() < deadline:
            time.sleep(1)
            consumers = [p for p in psutil.Process(server.pid).children(recursive=True)
                         if "huey_consumer" in " ".join(p.cmdline())]  # fmt: skip
        assert consumers, log.read_text()
    finally:
        stop_session(server)
    assert not [p for p in consumers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
