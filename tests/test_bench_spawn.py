"""``mnv1-bench spawn``: cold and warm workers of one tiny cell, alternated, read back from their
own phase timings (figures are printed, never asserted: BENCHMARKS.md)."""

from __future__ import annotations

import json
import math

import pytest

from mnv1.bench.spawn import FIGURES
from mnv1.cli.bench import main
from mnv1.sweep import warm


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_one_cold_and_one_warm_worker_give_every_figure(capsys: pytest.CaptureFixture) -> None:
    assert main(["spawn", "--format", "json", "--repeats", "1"]) == 0
    report = json.loads(capsys.readouterr().out)  # the workers' own lines are not on stdout
    assert report["benchmark"] == "Worker start: cold against warm"
    rows = {row["start"]: row for row in report["results"]}
    assert list(rows) == ["cold", "warm", "ratio cold / warm"]
    for row in rows.values():
        for figure in FIGURES:
            assert math.isfinite(row[figure]) and row[figure] >= 0, (row["start"], figure)
    assert len(rows["cold"]["runs"]) == len(rows["warm"]["runs"]) == 1
    meta = report["meta"]
    assert meta["repeats (A B alternated)"] == 1
    assert meta["zygote threads after imports"].startswith("mnv1-zygote")
    assert "load average before/after" in meta and "CPU" in meta
    assert warm.current() is None  # the benchmark's zygote is closed
