"""Benchmark results as MLflow runs (tag ``mnv1.kind=benchmark``), beside the sweeps they measure.

One benchmark invocation is one FINISHED run: its settings as params, its figures as metrics,
its printed report as a text artifact, so benchmark runs sort and compare in the MLflow UI like
any other run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import runs, schema
from .store import ensure_experiment, resolve_uri

TAG_BENCHMARK = "mnv1.benchmark"  # which benchmark: "sweep", "data", ...
REPORT_TEXT = "benchmark.md"


def log_benchmark(
    uri: str | None,
    experiment: str,
    benchmark: str,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    report: str,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Record one benchmark result as a new FINISHED run of ``experiment``; returns its id."""
    resolved = resolve_uri(uri)
    experiment_id = ensure_experiment(resolved, experiment)
    all_tags = {
        schema.TAG_KIND: schema.KIND_BENCHMARK,
        TAG_BENCHMARK: benchmark,
        **runs.Owner.current().tags(),
        **(tags or {}),
    }
    run_id = runs.create(resolved, experiment_id, f"bench_{benchmark}", all_tags)
    try:
        runs.log_params(resolved, run_id, params)
        runs.log_metrics(resolved, run_id, metrics)
        runs.log_text(resolved, run_id, REPORT_TEXT, report)
    except BaseException:
        runs.finish(resolved, run_id, runs.FAILED)
        raise
    runs.finish(resolved, run_id, runs.FINISHED)
    return run_id
