"""The training-throughput benchmark runs end to end and reports what it measured."""

from __future__ import annotations

import argparse
import json

import pytest

from mnv1.bench.train import run


@pytest.mark.slow
def test_train_benchmark_reports_both_paths_and_their_ratio(capsys):
    args = argparse.Namespace(cells=[(0.25, 32)], batch=8, steps=5, repeats=1, format="json")
    assert run(args) == 0
    report = json.loads(capsys.readouterr().out)  # nothing else on stdout: valid JSON
    (row,) = report["results"]
    assert (row["alpha"], row["resolution"], row["batch"]) == (0.25, 32, 8)
    assert len(row["ours_runs"]) == len(row["keras_runs"]) == 1
    assert row["ours_ips"] > 0 and row["keras_ips"] > 0
    assert row["ratio"] == pytest.approx(row["ours_ips"] / row["keras_ips"])
    assert report["meta"]["timed steps per run"] == 2
