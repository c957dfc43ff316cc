"""MLflowRunLog: the RunLog protocol written into one existing MLflow run (real SQLite store)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from mnv1.tracking import runs
from mnv1.tracking.runlog import MLflowRunLog
from mnv1.tracking.store import ensure_experiment

from mnv1.runlog import RunLog


@pytest.fixture
def run_log(sqlite_uri: str) -> MLflowRunLog:
    uri = sqlite_uri
    exp = ensure_experiment(uri, "writer")
    run_id = runs.create(uri, exp, "mnv1_a0.25_r32", {})
    return MLflowRunLog(run_id=run_id, uri=uri)


def history(t: MLflowRunLog, key: str) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in MlflowClient(t.uri).get_metric_history(t.run_id, key)]


def test_it_is_a_tracker(run_log: MLflowRunLog) -> None:
    as_protocol: RunLog = run_log
    assert as_protocol is run_log


def test_params_are_logged_once_and_a_resume_may_repeat_them(run_log: MLflowRunLog) -> None:
    run_log.log_params({"model.alpha": 0.25, "tracking.report_dir": "reports/a", "x": None})
    run_log.log_params({"model.alpha": 0.25, "tracking.report_dir": None, "model.resolution": 32})
    params = MlflowClient(run_log.uri).get_run(run_log.run_id).data.params
    # A volatile key keeps its first value; a new key is added.
    assert params == {
        "model.alpha": "0.25",
        "tracking.report_dir": "reports/a",
        "x": "None",
        "model.resolution": "32",
    }
    with pytest.raises(
        ValueError, match=r"param model.alpha of run .* is '0.25'; this attempt has '0.5'"
    ):
        run_log.log_params({"model.alpha": 0.5})


def test_epoch_metrics_and_finals(run_log: MLflowRunLog) -> None:
    run_log.log_metrics({"val_top1": 0.25, "loss": 2.0}, step=1)
    run_log.log_metrics({"val_top1": 0.5, "loss": 1.5}, step=2)
    assert run_log.logged_metric_steps("val_top1") == [1, 2]
    assert run_log.logged_metric_steps("never") == []
    # The final top-1 equal to the last epoch's adds no value; a new key starts at step 0.
    run_log.log_metrics({"val_top1": 0.5, "mult_adds": 123.0})
    assert history(run_log, "val_top1") == [(1, 0.25), (2, 0.5)]
    assert history(run_log, "mult_adds") == [(0, 123.0)]
    # A resumed run re-reports its costs: still one value.
    run_log.log_metrics({"mult_adds": 123.0})
    assert history(run_log, "mult_adds") == [(0, 123.0)]
    # A final that differs becomes the latest value at the last step.
    run_log.log_metrics({"val_top1": 0.625})
    assert sorted(history(run_log, "val_top1")) == [(1, 0.25), (2, 0.5), (2, 0.625)]
    assert MlflowClient(run_log.uri).get_run(run_log.run_id).data.metrics["val_top1"] == 0.625


def test_an_epochs_metrics_are_one_write(
    run_log: MLflowRunLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnv1.tracking.schema import PER_EPOCH_METRICS

    batches: list[int] = []
    log_batch = run_log._client.log_batch

    def counted(run_id: str, metrics=(), **kwargs):  # type: ignore[no-untyped-def]
        batches.append(len(metrics))
        return log_batch(run_id, metrics=metrics, **kwargs)

    monkeypatch.setattr(run_log._client, "log_batch", counted)
    run_log.log_metrics(dict.fromkeys(PER_EPOCH_METRICS, 0.5), step=1)
    assert batches == [len(PER_EPOCH_METRICS)] == [5]  # one log_batch, every metric in it
    assert all(history(run_log, key) == [(1, 0.5)] for key in PER_EPOCH_METRICS)


def test_tags_and_text(run_log: MLflowRunLog, tmp_path: Path) -> None:
    run_log.set_tags({"mnv1.replicas": "2", "mnv1.strategy": "MirroredStrategy"})
    run_log.log_text("costs.md", "| layer | MACs |\n")
    c = MlflowClient(run_log.uri)
    tags = c.get_run(run_log.run_id).data.tags
    assert tags["mnv1.replicas"] == "2" and tags["mnv1.strategy"] == "MirroredStrategy"
    local = c.download_artifacts(run_log.run_id, "costs.md", str(tmp_path))
    assert Path(local).read_text() == "| layer | MACs |\n"


def test_log_model_with_signature_leaves_the_run_running(run_log: MLflowRunLog) -> None:
    import keras
    import mlflow

    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(4, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(inputs)
    )
    model = keras.Model(inputs, outputs)
    example = np.zeros((1, 8, 8, 3), dtype="float32")
    run_log.log_model(model, example)

    c = MlflowClient(run_log.uri)
    run = c.get_run(run_log.run_id)
    assert run.info.status == "RUNNING"  # the orchestrator, not the writer, ends the run
    assert mlflow.active_run() is None
    outputs_logged = run.outputs.model_outputs
    assert len(outputs_logged) == 1
    logged = c.get_logged_model(outputs_logged[0].model_id)
    assert logged.name == "model" and logged.source_run_id == run_log.run_id
    assert logged.experiment_id == run.info.experiment_id
    info = mlflow.models.get_model_info(f"models:/{logged.model_id}")
    assert info.signature is not None
    assert info.signature.inputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 8, 8, 3)
    assert info.signature.outputs.to_dict()[0]["tensor-spec"]["shape"] == (-1, 4)
    # Read off the model's declared output, the signature is the one its actual output gives.
    assert info.signature == mlflow.models.infer_signature(example, np.asarray(model(example)))
    loaded = mlflow.keras.load_model(f"models:/{logged.model_id}")
    np.testing.assert_allclose(loaded(example), model(example), rtol=1e-6)
    # The input example is kept with the model, and the run names its LoggedModel.
    assert info.saved_input_example_info is not None
    assert run.data.tags["mnv1.model_id"] == logged.model_id


def test_files_of_the_same_model_attach_to_its_logged_model(run_log: MLflowRunLog) -> None:
    import keras
    from mnv1.tracking import models

    client = MlflowClient(run_log.uri)
    # Before the model is logged, an export is a run artifact only.
    run_log.log_file("tflite/early.tflite", b"0" * 16)
    assert [a.path for a in client.list_artifacts(run_log.run_id, "tflite")] == [
        "tflite/early.tflite"
    ]
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs))
    run_log.log_model(model, np.zeros((1, 8, 8, 3), dtype="float32"))
    for i, name in enumerate(("model_fp32.tflite", "model_int8.tflite")):
        run_log.log_file(f"tflite/{name}", bytes([i]) * 16)
    model_id = models.logged_model_id(run_log.uri, run_log.run_id)
    assert model_id is not None
    found = models.read_logged_model(run_log.uri, model_id)
    listed = [a.path for a in client.list_logged_model_artifacts(model_id, "tflite")]
    assert sorted(listed) == ["tflite/model_fp32.tflite", "tflite/model_int8.tflite"]
    on_run = [a.path for a in client.list_artifacts(run_log.run_id, "tflite")]
    assert sorted(on_run) == [
        "tflite/early.tflite",
        "tflite/model_fp32.tflite",
        "tflite/model_int8.tflite",
    ]
    assert "MLmodel" in found.artifacts and found.has_input_example
