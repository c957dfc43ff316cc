"""MLflowRunLog: the training loop's RunLog (mnv1.runlog) backed by one existing
MLflow run.

The sweep creates the run and decides its final status; the worker process that trains only
writes into it through this class. So nothing here starts or ends a run: a worker that crashes
leaves the run RUNNING for its orchestrator to mark FAILED or KILLED.
"""

from __future__ import annotations

import logging
import os
import time
import types
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

from mlflow.entities import Metric, Param, RunTag

from mnv1.run_key import VOLATILE_PREFIXES

from . import datasets
from .flatbuffers import log_flatbuffer
from .models import MODEL_NAME, TAG_MODEL_ID
from .store import client, resolve_uri
from .uri import connect_uri

log = logging.getLogger(__name__)

_PARAM_LIMIT = 6000  # characters MLflow keeps of a param value
_PARAM_BATCH = 100  # params per log_batch call (MLflow's limit)
_METRIC_BATCH = 1000  # metrics per log_batch call (MLflow's limit)


def _save_keras(path: str, **kwargs: Any) -> None:
    # mlflow.keras.save_model writes the input example before it creates its target folder, so
    # mlflow.keras.log_model with an input example fails (mlflow/mlflow#16183, open as of MLflow
    # 3.17): create the folder first, then save exactly as mlflow.keras does.
    import mlflow.keras

    # Model.log hands its own options to the flavor too; this one is not save_model's.
    kwargs.pop("validate_serving_input", None)
    os.makedirs(path, exist_ok=True)
    mlflow.keras.save_model(path=path, **kwargs)


# What mlflow.keras.log_model hands to Model.log, with the folder created first (_save_keras);
# the name is the flavor's, which MLflow records on the LoggedModel.
_KERAS_FLAVOR = types.SimpleNamespace(__name__="mlflow.keras", save_model=_save_keras)


def _output_like(model: Any, example: Any) -> Any:
    """Zeros shaped and typed as ``model``'s output on ``example``: all a signature reads of an
    output (its dtype and shape, the batch left free), without running the model eagerly."""
    import numpy as np

    [output] = model.outputs
    return np.zeros((len(example), *output.shape[1:]), dtype=output.dtype)


class MLflowRunLog:
    """Writes params, metrics, tags, text artifacts and the model into run ``run_id``."""

    def __init__(self, run_id: str, uri: str | None = None, serving_check: bool = False) -> None:
        """``serving_check=True`` logs a model as MLflow does by default: the signature's output
        from a forward pass, then MLflow's check of the input example (a load of the saved
        model and a prediction); ``mnv1-bench fixed`` times it against the default."""
        self.run_id = run_id
        self.uri = resolve_uri(uri)
        self._client = client(self.uri)
        self._model_id: str | None = None  # the LoggedModel log_model created, once it has
        self._serving_check = serving_check

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params; a resumed run re-logs the same values, which is a no-op.

        MLflow refuses to change a param. A changed value of a key that defines the run (not a
        volatile one such as ``tracking.*`` or ``data.data_dir``) means the run key and the run
        disagree, which is a bug worth stopping for.
        """
        existing = self._client.get_run(self.run_id).data.params
        new: list[Param] = []
        for key, value in params.items():
            text = str(value)[:_PARAM_LIMIT]
            if key not in existing:
                new.append(Param(key, text))
            elif existing[key] != text:
                if key.startswith(VOLATILE_PREFIXES):
                    log.info(
                        "param %s changed from %r to %r on resume; keeping the first",
                        key,
                        existing[key],
                        text,
                    )
                else:
                    raise ValueError(
                        f"param {key} of run {self.run_id} is {existing[key]!r}; this attempt has "
                        f"{text!r}: a run key must not cover two configurations"
                    )
        for i in range(0, len(new), _PARAM_BATCH):
            self._client.log_batch(self.run_id, params=new[i : i + _PARAM_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Log metrics at ``step`` (the epoch).

        A final value (step None) becomes the key's latest value without adding an epoch: it
        goes at the key's last logged step (0 for a new key), and is not logged again when it is
        already the latest value (the final top-1 of a run is its last epoch's top-1; a resumed
        run re-reports its costs), so a per-epoch history keeps one value per epoch.
        """
        now = int(time.time() * 1000)
        items = []
        for key, value in metrics.items():
            at = step
            if at is None:
                history = self._client.get_metric_history(self.run_id, key)
                if history:
                    latest = max(history, key=lambda m: (m.step, m.timestamp))
                    if latest.value == float(value):
                        continue
                    at = latest.step
                else:
                    at = 0
            items.append(Metric(key, float(value), now, int(at)))
        for i in range(0, len(items), _METRIC_BATCH):
            self._client.log_batch(self.run_id, metrics=items[i : i + _METRIC_BATCH])

    def set_tags(self, tags: Mapping[str, str]) -> None:
        if tags:
            self._client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_text(self, name: str, text: str) -> None:
        self._client.log_text(self.run_id, text, name)

    def log_inputs(self, inputs: Sequence[Any]) -> None:
        """Link the run to the datasets it read (``mnv1.data.inputs.DataInput``)."""
        datasets.log_inputs(self.uri, self.run_id, inputs)

    def log_model(self, model: Any, input_example: Any) -> None:
        """Log ``model`` as an MLflow Keras LoggedModel named "model", with ``input_example``
        and a signature inferred from it and the model's declared output; the LoggedModel's id
        goes on the run as tag ``mnv1.model_id`` (``mnv1.tracking.models.logged_model_id``)."""
        import mlflow
        import numpy as np
        from mlflow.models import Model, infer_signature

        example = np.asarray(input_example)
        if self._serving_check:
            output = np.asarray(model(example, training=False))
        else:
            output = _output_like(model, example)
        signature = infer_signature(example, output)
        # Pinning requirements skips MLflow's inference, which loads the model again in a
        # subprocess (tens of seconds per run).
        requirements = [f"{pkg}=={metadata.version(pkg)}" for pkg in ("keras", "tensorflow")]
        # mlflow.keras.log_model writes into the active run: activate ours (the worker is its own
        # process, so the global URI is ours alone, and the run stack is this thread's), then
        # leave it RUNNING; the orchestrator sets the final status when this process has exited.
        mlflow.set_tracking_uri(connect_uri(self.uri))
        mlflow.start_run(run_id=self.run_id)
        try:
            info = Model.log(
                artifact_path=None,
                name=MODEL_NAME,
                flavor=_KERAS_FLAVOR,
                model=model,
                signature=signature,
                input_example=example,
                pip_requirements=requirements,
                # MLflow would check the example by loading the model it just saved and
                # predicting on it: a Keras load and a predict trace, over a second per cell at
                # 224 px, for a warning at most. Loading a logged model back is tested instead
                # (tests/test_tracking_runlog.py).
                validate_serving_input=self._serving_check,
            )
        finally:
            mlflow.end_run(status="RUNNING")
        self._model_id = str(info.model_id)
        self.set_tags({TAG_MODEL_ID: self._model_id})

    def log_file(self, name: str, data: bytes) -> None:
        # Exports of the logged model (its LiteRT flatbuffers) go on its LoggedModel too, so one
        # model's files live together; the run keeps them as artifacts either way.
        log_flatbuffer(self._client, self.run_id, name, data, self._model_id)

    def logged_metric_steps(self, key: str) -> list[int]:
        return sorted({m.step for m in self._client.get_metric_history(self.run_id, key)})
