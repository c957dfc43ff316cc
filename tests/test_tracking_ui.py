"""The URLs that open the MLflow UI on a sweep (the browser check is tests/test_ui_browser.py)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from mnv1.tracking import ui

from mnv1.cli.ui import main as ui_main


def test_runs_url_of_a_local_store_and_of_a_server() -> None:
    local = ui.runs_url("sqlite:////tmp/mlflow.db", "3", "0123456789abcdef")
    assert local == (
        "http://127.0.0.1:5000/#/experiments/3/runs?viewStateShareKey=mnv1-sweep-0123456789abcdef"
    )
    served = ui.runs_url("http://user:pw@10.1.2.3:8080/", "3", "0123456789abcdef")
    assert served.startswith("http://user:***@10.1.2.3:8080/#/experiments/3/runs?")
    assert "pw" not in served


def test_the_shared_view_sorts_filters_and_shows_the_papers_columns() -> None:
    name, value = ui.view_tag("0123456789abcdef")
    assert name == "mlflow.sharedViewState.mnv1-sweep-0123456789abcdef"
    state = json.loads(value)
    assert state["searchFilter"] == "tags.`mnv1.sweep` = '0123456789abcdef'"
    assert (state["orderByKey"], state["orderByAsc"]) == ("metrics.`val_top1`", False)
    assert (
        state["selectedColumns"]
        == state["columnOrder"]
        == [
            "metrics.`alpha`",
            "metrics.`resolution`",
            "metrics.`mult_adds`",
            "metrics.`params`",
            "metrics.`val_top1`",
            "metrics.`val_top5`",
            "metrics.`train_images_per_sec`",
            # The deploy-side columns (export.enabled), empty for a sweep that did not export.
            "metrics.`tflite_bytes`",
            "metrics.`tflite_int8_bytes`",
            "metrics.`val_top1_int8`",
            "metrics.`latency_ms_fp32_1t`",
            "metrics.`latency_ms_int8_1t`",
        ]
    )
    assert state["runsHiddenMode"] == "SHOW_ALL"
    assert len(value) < 5000  # MLflow's limit on a tag value


def test_parent_note_links_the_compare_page_of_its_cells() -> None:
    ids = [f"{i:032x}" for i in range(16)]
    note = ui.sweep_note("demo", "7", "0123456789abcdef", ids)
    compare = note.split("](#", 1)[1].split(")", 1)[0]
    path, _, query = compare.partition("?")
    assert path == "/compare-runs"
    fields = parse_qs(query)
    assert json.loads(unquote(fields["runs"][0])) == ids
    assert json.loads(unquote(fields["experiments"][0])) == ["7"]
    assert "[Compare the 16 cells]" in note
    assert "(#/experiments/7/runs?viewStateShareKey=mnv1-sweep-0123456789abcdef)" in note
    assert urlsplit(ui.ui_base("sqlite:///x.db")).hostname == "127.0.0.1"


def test_the_ui_server_binds_loopback_without_genai_jobs() -> None:
    command = ui.server_command("sqlite:////tmp/m.db", port=5123)
    assert command[:2] == ["mlflow", "server"]
    assert command[command.index("--host") + 1] == "127.0.0.1"
    assert command[command.index("--port") + 1] == "5123"
    assert ui.server_env({})["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert (
        ui.server_env({"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"})[
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
        ]
        == "true"
    )


def test_mnv1_ui_refuses_a_missing_store_and_points_at_a_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)
    assert ui_main(["--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert f"there is no store at {tmp_path / 'none.db'} yet" in capsys.readouterr().err
    assert ui_main(["--port", "0"]) == 2
    assert "--port is 0; allowed: 1 to 65535" in capsys.readouterr().err
    assert ui_main(["--tracking-uri", "http://u:pw123@127.0.0.1:5999"]) == 0
    out = capsys.readouterr().out
    assert "http://127.0.0.1:5999 is a tracking server; it serves its own UI there" in out
    assert "pw123" not in out
