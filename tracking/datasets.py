"""A run's data as MLflow dataset inputs: what it trained on and what it was scored on.

Each ``mnv1.data.inputs.DataInput`` becomes one MLflow dataset (name, digest, source, profile)
linked to the run with its context (``training``, ``validation``, or ``holdout`` for a tune
trial), so the run page's Datasets section, the runs table's Datasets column and the lineage
views show it. Only metadata is logged: the digest comes from the data layer (TFDS's own record
of the prepared data), never from reading the examples again. MLflow keeps one dataset per
(name, digest) in an experiment and one input per (dataset, run), so a resumed run that logs its
inputs again adds nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from .store import client
from .uri import redact

SOURCE_TYPE = "tfds"  # the data is a prepared TFDS dataset (catalog, folder or synthetic)


def dataset_input(item: Any) -> DatasetInput:
    """The MLflow dataset input of one ``DataInput``; its location without credentials."""
    location = redact(item.location)
    source = {"tfds_name": item.name, "version": item.version, "split": item.split}
    source["data_path"] = location
    profile = {"num_examples": item.examples, "split": item.split, "version": item.version}
    dataset = Dataset(
        name=item.title,
        digest=item.digest,
        source_type=SOURCE_TYPE,
        source=json.dumps(source),
        profile=json.dumps(profile),
    )
    return DatasetInput(dataset, tags=[InputTag(MLFLOW_DATASET_CONTEXT, item.context)])


def log_inputs(uri: str, run_id: str, inputs: Sequence[Any]) -> None:
    """Link the datasets of ``inputs`` to run ``run_id``."""
    if inputs:
        client(uri).log_inputs(run_id, datasets=[dataset_input(i) for i in inputs])


def run_inputs(uri: str, run_id: str) -> dict[str, dict[str, Any]]:
    """The dataset inputs of a run by context: name, digest, source type and the decoded source
    and profile (how tests and scripts read them back)."""
    found: dict[str, dict[str, Any]] = {}
    for item in client(uri).get_run(run_id).inputs.dataset_inputs:
        tags = {t.key: t.value for t in item.tags}
        ds = item.dataset
        found[tags.get(MLFLOW_DATASET_CONTEXT, "")] = {
            "name": ds.name,
            "digest": ds.digest,
            "source_type": ds.source_type,
            "source": json.loads(ds.source),
            "profile": json.loads(ds.profile) if ds.profile else {},
        }
    return found
