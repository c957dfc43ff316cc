"""``mnv1-bench data``: runs end to end on a tiny synthetic set (figures, not speed, checked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnv1.bench.data import steady_step_seconds, wait_share
from mnv1.cli.bench import build_parser, main


def test_json_has_one_row_per_resolution(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["data", "--tiny", "--resolutions", "48", "32", "--data-dir", str(tmp_path)]
    assert main([*argv, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["benchmark"] == "data"
    assert report["meta"]["alpha"] == 0.25 and report["meta"]["batch_size"] == 8
    assert report["meta"]["dataset"] == "mnv1_synthetic/s0_tr64_va16_c10_px64 1.0.0"
    rows = report["results"]
    assert [r["resolution"] for r in rows] == [48, 32]
    for r in rows:
        assert len(r["pipeline_repeats"]) == 2 and len(r["train_repeats"]) == 2
        assert r["pipeline_images_per_sec"] > 0 and r["train_images_per_sec"] > 0
        assert sorted(r["pipeline_repeats"])[0] <= r["pipeline_images_per_sec"]
        assert r["ratio"] == pytest.approx(r["pipeline_images_per_sec"] / r["train_images_per_sec"])
        # The input wait share of a real fit: two timed fits of each kind, a share in [0, 1).
        assert len(r["fit_repeats"]) == 2 and len(r["fit_cached_repeats"]) == 2
        assert r["fit_step_seconds"] > 0 and r["fit_step_seconds_cached"] > 0
        assert r["input_wait_share"] == pytest.approx(
            wait_share(r["fit_step_seconds"], r["fit_step_seconds_cached"])
        )
        assert 0.0 <= r["input_wait_share"] < 1.0
    assert report["meta"]["fit steps per repeat (input wait)"] == 3


def test_markdown_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    argv = ["data", "--tiny", "--resolutions", "32", "--repeats", "1", "--data-dir", str(tmp_path)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| ρ |"))
    assert lines[header].endswith("| pipeline / train | input wait share (fit) |")
    assert lines[header + 1].startswith("|---:|")
    assert lines[header + 2].startswith("| 32 |")
    assert "- repeats: 1" in lines


def test_wait_share_and_steady_step_time() -> None:
    assert wait_share(0.5, 0.4) == pytest.approx(0.2)
    assert wait_share(0.4, 0.5) == 0.0  # the cached batch was slower: no wait measured
    # Steady: from the end of the first step (which traces) to the end of the last.
    assert steady_step_seconds([10.0, 12.0, 13.0, 14.0]) == pytest.approx(4.0 / 3)
    with pytest.raises(ValueError, match="at least 2"):
        steady_step_seconds([1.0])


def test_parser_offers_data_and_rejects_unknown_format() -> None:
    parser = build_parser()
    args = parser.parse_args(["data"])
    assert args.format == "markdown" and args.resolutions == [224, 192, 160, 128]
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "--format", "csv"])
    with pytest.raises(SystemExit):
        parser.parse_args([])
