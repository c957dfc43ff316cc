"""MLflow side of ``mnv1-tune``: a search's parent run, its trial runs, and its artifacts.

A search (one cell of one study, one search space, oracle and seed) has one parent run, tag
``mnv1.kind=tune``, found again by its key on a relaunch; each KerasTuner trial has one child run
nested under it, tag ``mnv1.kind=trial``, found again by (key, trial id), so a trial that is run
again (a killed process, a restarted worker) continues its own run (both with ``runs.newest``).
Both live in the experiment ``<study>_tune``, never in the study's own experiment that the paper
report reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import runs, schema
from .store import client

SEARCH_SPACE_ARTIFACT = "search_space.json"
TRIALS_CSV_ARTIFACT = "trials.csv"
TRIALS_FIGURE_ARTIFACT = "trials.png"


def create_search(
    uri: str,
    experiment_id: str,
    name: str,
    tags: Mapping[str, str],
    space: Mapping[str, Any],
) -> str:
    """A new RUNNING parent run holding the search space as ``search_space.json``."""
    run_id = runs.create(uri, experiment_id, name, {schema.TAG_KIND: schema.KIND_TUNE, **tags})
    runs.log_json(uri, run_id, SEARCH_SPACE_ARTIFACT, dict(space))
    return run_id


def create_trial(
    uri: str,
    experiment_id: str,
    name: str,
    parent_run_id: str,
    tags: Mapping[str, str],
    values: Mapping[str, Any],
) -> str:
    """A new RUNNING trial run nested under the search's parent; its values as a JSON tag (typed,
    for the summary) besides the params the caller logs."""
    all_tags = {
        schema.TAG_KIND: schema.KIND_TRIAL,
        schema.TAG_TRIAL_VALUES: json.dumps(dict(values), sort_keys=True),
        **tags,
    }
    return runs.create(uri, experiment_id, name, all_tags, parent_run_id=parent_run_id)


def trials_of(uri: str, experiment_id: str, tune_key: str) -> list[runs.RunInfo]:
    """Every trial run of the search, oldest first."""
    found = runs.search(
        uri, experiment_id, tags={schema.TAG_TUNE_KEY: tune_key, schema.TAG_KIND: schema.KIND_TRIAL}
    )
    return list(reversed(found))


def trial_values(run: runs.RunInfo) -> dict[str, Any]:
    text = run.tags.get(schema.TAG_TRIAL_VALUES)
    return dict(json.loads(text)) if text else {}


def log_file(uri: str, run_id: str, path: Path) -> None:
    """Attach a file (trials.csv, trials.png) at the top of a run's artifacts."""
    client(uri).log_artifact(run_id, str(path))


def log_best(uri: str, run_id: str, trial_id: str, trial_run_id: str, val_top1: float) -> None:
    runs.set_tags(uri, run_id, {schema.TAG_BEST_TRIAL: trial_id, schema.TAG_BEST_RUN: trial_run_id})
    runs.log_metrics(uri, run_id, {schema.METRIC_BEST_VAL_TOP1: val_top1})
