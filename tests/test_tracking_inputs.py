"""A run's datasets (``mnv1.data.inputs``) and MLflow's system metrics, as the tracking layer
logs them: on the embedded synthetic set and a real SQLite store, no sweep."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from mnv1.config import ConfigError, DataConfig, SyntheticConfig
from mnv1.data.pipeline import load_datasets

TINY = SyntheticConfig(train_size=40, val_size=20, image_size=64)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tfds")


def _inputs(data_dir: Path, **kw):
    cfg = DataConfig(data_dir=str(data_dir), synthetic=TINY, **kw)
    return load_datasets(cfg, resolution=32, global_batch=8, seed=0).inputs


def test_a_run_reads_a_training_and_a_validation_input_with_their_counts(data_dir: Path) -> None:
    train, val = _inputs(data_dir)
    assert (train.context, train.split, train.examples) == ("training", "train", 40)
    assert (val.context, val.split, val.examples) == ("validation", "validation", 20)
    for item in (train, val):
        assert item.name == "mnv1_synthetic/s0_tr40_va20_c10_px64" and item.version == "1.0.0"
        assert item.location == str(data_dir / "mnv1_synthetic/s0_tr40_va20_c10_px64/1.0.0")
        assert len(item.digest) == 16
    assert train.title == f"{train.name} 1.0.0 train"
    assert train.digest != val.digest


def test_the_digest_follows_the_data_read(data_dir: Path) -> None:
    _, val = _inputs(data_dir)
    _, again = _inputs(data_dir)
    assert again.digest == val.digest  # same prepared data, same slice: same digest
    _, fewer = _inputs(data_dir, max_val_examples=10)
    assert fewer.examples == 10 and fewer.digest != val.digest


def test_the_digest_changes_when_the_prepared_data_does(data_dir: Path, tmp_path: Path) -> None:
    _, val = _inputs(data_dir)
    # The same dataset, version, split and count, prepared again with other bytes (as a changed
    # generator would): TFDS's record of the split says so, and so does the digest.
    copy = tmp_path / "tfds"
    shutil.copytree(data_dir, copy)
    [info] = copy.glob("mnv1_synthetic/*/1.0.0/dataset_info.json")
    record = json.loads(info.read_text())
    for split in record["splits"]:
        split["numBytes"] = str(int(split["numBytes"]) + 1)
    info.write_text(json.dumps(record))
    _, changed = _inputs(copy)
    assert (changed.name, changed.split, changed.examples) == (val.name, val.split, val.examples)
    assert changed.digest != val.digest


def test_a_trial_scores_on_the_held_out_tail_of_the_training_split(data_dir: Path) -> None:
    train, held = _inputs(data_dir, holdout_percent=25)
    assert (train.context, train.split, train.examples) == ("training", "train[:30]", 30)
    assert (held.context, held.split, held.examples) == ("holdout", "train[30:40]", 10)


def test_inputs_are_logged_once_with_their_fields(data_dir: Path, sqlite_uri: str) -> None:
    from mnv1.tracking import datasets, runs
    from mnv1.tracking.runlog import MLflowRunLog
    from mnv1.tracking.store import client

    uri = sqlite_uri
    experiment = client(uri).create_experiment("inputs")
    run_id = runs.create(uri, experiment, "cell", {})
    inputs = _inputs(data_dir)
    log = MLflowRunLog(run_id, uri)
    log.log_inputs(inputs)
    log.log_inputs(inputs)  # a resumed run logs them again: nothing is added
    assert len(client(uri).get_run(run_id).inputs.dataset_inputs) == 2
    found = datasets.run_inputs(uri, run_id)
    assert sorted(found) == ["training", "validation"]
    train = found["training"]
    assert train["name"] == inputs[0].title and train["digest"] == inputs[0].digest
    assert train["source_type"] == "tfds"
    assert train["source"] == {
        "tfds_name": inputs[0].name,
        "version": "1.0.0",
        "split": "train",
        "data_path": inputs[0].location,
    }
    assert train["profile"] == {"num_examples": 40, "split": "train", "version": "1.0.0"}
    assert found["validation"]["profile"]["num_examples"] == 20


def test_a_data_path_with_credentials_is_logged_without_them() -> None:
    from mnv1.tracking.datasets import dataset_input

    from mnv1.data.inputs import DataInput

    item = DataInput("training", "x", "1.0.0", "train", 4, "s3://user:secret@host/tfds/x", "d")
    source = json.loads(dataset_input(item).dataset.source)
    assert source["data_path"] == "s3://user:***@host/tfds/x"  # mnv1.tracking.uri.redact
    assert "secret" not in dataset_input(item).dataset.source


def test_system_metrics_sample_a_running_run_and_stop_with_it(sqlite_uri: str) -> None:
    from mnv1.tracking import runs, system_metrics
    from mnv1.tracking.store import client

    uri = sqlite_uri
    experiment = client(uri).create_experiment("system")
    run_id = runs.create(uri, experiment, "cell", {})
    assert system_metrics.start(uri, run_id, 0) is None  # 0: off
    monitor = system_metrics.start(uri, run_id, 0.2)
    deadline = time.monotonic() + 60
    keys: set[str] = set()
    while time.monotonic() < deadline and "system/cpu_utilization_percentage" not in keys:
        time.sleep(0.2)
        monitor.mlflow_logger.flush()
        keys = set(client(uri).get_run(run_id).data.metrics)
    monitor.finish()
    assert {
        "system/cpu_utilization_percentage",
        "system/system_memory_usage_megabytes",
        "system/disk_usage_percentage",
        "system/network_receive_megabytes",
    } <= keys


def test_a_bad_interval_is_refused_by_the_rule_table() -> None:
    from mnv1.tracking import system_metrics

    for bad in (-1, "10", True, None, 3601):
        with pytest.raises(ConfigError, match=rf"tracking\.system_metrics_interval_s={bad!r}: "):
            system_metrics.check_interval(bad)
