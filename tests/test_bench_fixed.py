"""``mnv1-bench fixed``: one real run at the smallest cell, a well-formed result (not a speed)."""

from __future__ import annotations

import json
import os

import pytest

from mnv1.bench.fixed import PARTS
from mnv1.cli.bench import main


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fixed_costs_are_timed_before_and_after_in_one_process(capsys, store_templates):
    from mnv1.tracking.sqlite_store import ENV_TEMPLATE_DIR

    argv = ["fixed", "--cell", "0.25:32", "--repeats", "1", "--warmup", "0"]
    assert main([*argv, "--latency-repeats", "1", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)  # nothing else on stdout: valid JSON
    assert [row["part"] for row in report["results"]] == list(PARTS)
    for row in report["results"]:
        assert [row["before_s"]] == row["before_runs"], row["part"]  # one run: its median
        assert [row["after_s"]] == row["after_runs"], row["part"]
        assert row["before_s"] > 0 and row["after_s"] > 0
        assert row["ratio"] == pytest.approx(row["before_s"] / row["after_s"])
        assert row["saved_s"] == pytest.approx(row["before_s"] - row["after_s"])
    meta = report["meta"]
    assert meta["cell"] == "α 0.25, ρ 32" and meta["repeats"] == 1
    assert "load average before/after" in meta and "CPUs" in meta["hardware"]
    # The parts pointed the store templates into their own folder; the setting is restored.
    assert os.environ[ENV_TEMPLATE_DIR] == str(store_templates)


def test_bad_counts_are_refused(capsys):
    assert main(["fixed", "--repeats", "0"]) == 2
    assert "--repeats and --latency-repeats must be >= 1" in capsys.readouterr().err
