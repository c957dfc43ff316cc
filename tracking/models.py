"""A cell's model as an MLflow LoggedModel, and the registry version a sweep picks for deployment.

MLflow 3 keeps a logged model as a LoggedModel of the experiment, linked to the run that logged
it (its ``source_run_id``). ``MLflowRunLog.log_model`` records the LoggedModel's id on the run
(tag ``mnv1.model_id``), so what comes after training finds it without a search:
``logged_model_id`` returns it, and the run log's ``log_file`` puts further files of the same
model (its LiteRT exports, ``mnv1.tracking.flatbuffers``) on the same LoggedModel.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

from .store import client
from .uri import connect_uri

TAG_MODEL_ID = "mnv1.model_id"  # on a cell run: the LoggedModel its log_model created
MODEL_NAME = "model"  # the LoggedModel's name (and the Keras model's folder in it)
CHAMPION = "champion"  # the registry alias of the version a sweep picked


def logged_model_id(uri: str, run_id: str) -> str | None:
    """The id of the LoggedModel that run ``run_id`` logged (the newest one, if it logged
    several: a rerun logs its model again), or None when it logged none."""
    c = client(uri)
    run = c.get_run(run_id)
    tagged = run.data.tags.get(TAG_MODEL_ID)
    if tagged:
        return str(tagged)
    found = c.search_logged_models(
        [run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}'",
        order_by=[{"field_name": "creation_timestamp", "ascending": False}],
        max_results=1,
    )
    return str(found[0].model_id) if found else None


@dataclass(frozen=True)
class LoggedModelInfo:
    """What a test or the registry needs of one LoggedModel."""

    model_id: str
    name: str
    source_run_id: str | None
    signature: dict[str, Any] | None
    """The model's MLmodel signature (``inputs``/``outputs`` JSON strings), None without one."""
    has_input_example: bool
    artifacts: tuple[str, ...]


def read_logged_model(uri: str, model_id: str) -> LoggedModelInfo:
    """A LoggedModel with its MLmodel file read back (signature and input example)."""
    import yaml

    c = client(uri)
    model = c.get_logged_model(model_id)
    names = tuple(sorted(a.path for a in c.list_logged_model_artifacts(model_id)))
    with tempfile.TemporaryDirectory() as tmp:
        from mlflow.artifacts import download_artifacts

        local = download_artifacts(
            artifact_uri=f"{model.artifact_location}/MLmodel",
            dst_path=tmp,
            tracking_uri=connect_uri(uri),
        )
        mlmodel = yaml.safe_load(Path(local).read_text())
    return LoggedModelInfo(
        model_id=model.model_id,
        name=model.name,
        source_run_id=model.source_run_id,
        signature=mlmodel.get("signature"),
        has_input_example="saved_input_example_info" in mlmodel,
        artifacts=names,
    )


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: str
    model_id: str
    run_id: str


def register(
    uri: str, name: str, run_id: str, tags: Mapping[str, str], alias: str = CHAMPION
) -> RegisteredVersion:
    """Register the LoggedModel of run ``run_id`` as a new version of registered model ``name``
    (created when new), tagged with ``tags``, and point ``alias`` at it.

    ValueError when the run logged no model.
    """
    model_id = logged_model_id(uri, run_id)
    if model_id is None:
        raise ValueError(
            f"run {run_id} logged no model (tracking.log_model=false): cannot register it"
        )
    c = client(uri)
    try:
        c.get_registered_model(name)
    except MlflowException as err:
        if err.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise ValueError(f"registered model {name!r}: {err.message}") from err
        try:
            c.create_registered_model(name)
        except MlflowException as bad:  # a name the registry refuses
            raise ValueError(f"registered model {name!r}: {bad.message}") from bad
    model = c.get_logged_model(model_id)
    # The SQL registry store keeps no model id on a version (its source is the LoggedModel's
    # artifact location): the tag ``model_id`` says which LoggedModel it is.
    version = c.create_model_version(
        name,
        source=model.artifact_location,
        run_id=run_id,
        tags={**tags, "model_id": model_id},
        model_id=model_id,
    )
    c.set_registered_model_alias(name, alias, version.version)
    return RegisteredVersion(name, str(version.version), model_id, run_id)


def alias_target(uri: str, name: str, alias: str = CHAMPION) -> tuple[str, str, dict[str, str]]:
    """(version, run id, tags) of the version ``alias`` of ``name`` points at."""
    version = client(uri).get_model_version_by_alias(name, alias)
    return str(version.version), str(version.run_id), dict(version.tags)
