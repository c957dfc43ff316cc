"""``mnv1-tune`` end to end, as processes: a trial SIGKILLed mid-way and the command relaunched;
KerasTuner's distributed mode on the loopback (a chief and two workers, one worker killed and
restarted under its id); and real training of the smoke study, fed back into ``mnv1-train``."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from tune_support import CELL, TuneSpace, expected_top1

from mnv1.hydra_app.grid import check_command
from mnv1.run_key import run_key
from mnv1.tune.distributed import free_port
from mnv1.tuned import read_tuned


@pytest.fixture
def ts(tmp_path: Path) -> TuneSpace:
    return TuneSpace(tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_trial_killed_mid_way_resumes_in_its_own_run_after_a_relaunch(ts: TuneSpace) -> None:
    ts.extra_env.update(ts.standin_env())
    args = ts.args("tune.max_trials=4")
    first = ts.cli("mnv1-tune", *args, MNV1_STANDIN_KILL_TRIAL="1")
    assert first.returncode == 3, first.stdout + first.stderr
    assert "relaunch" in first.stderr
    killed = ts.trials()["1"]
    assert killed.info.status == "KILLED"
    assert ts.steps(killed, "val_top1") == [1]  # it died after its first epoch's checkpoint

    again = ts.cli("mnv1-tune", *args, MNV1_STANDIN_KILL_TRIAL="1")
    assert again.returncode == 0, again.stdout + again.stderr
    trials = ts.trials()
    assert sorted(trials) == ["0", "1", "2", "3"]  # still exactly four children
    resumed = trials["1"]
    assert resumed.info.run_id == killed.info.run_id
    assert resumed.info.status == "FINISHED"
    assert resumed.data.tags["mnv1.attempt"] == "2"
    assert resumed.data.tags["mnv1.resumed_from_epoch"] == "1"
    assert resumed.data.params == killed.data.params  # same values (and same config)
    assert resumed.data.tags["mnv1.trial_values"] == killed.data.tags["mnv1.trial_values"]
    assert ts.steps(resumed, "val_top1") == [1, 2]  # epoch 1 is not logged twice
    assert resumed.data.metrics["val_top1"] == pytest.approx(expected_top1(resumed))
    assert len(ts.kind("tune")) == 1
    best = max(trials.values(), key=lambda r: r.data.metrics["val_top1"])
    assert ts.tuned_file()["cells"][CELL]["run_id"] == best.info.run_id


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_loopback_chief_and_two_workers_with_a_worker_killed(ts: TuneSpace) -> None:
    ts.extra_env.update(ts.standin_env())
    args = ts.args("tune.max_trials=6", "tune.workers=2")
    meet = ts.root / "meet"
    meet.mkdir()
    done = ts.cli(
        "mnv1-tune",
        *args,
        MNV1_STANDIN_KILL_TRIAL="2",
        MNV1_STANDIN_KILL="parent",  # the trial kills the worker that runs it, then itself
        # The first trial of each worker waits for the other's: both workers run trials.
        MNV1_STANDIN_MEET=f"{meet}:2",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    trials = ts.trials()  # asserts one run per trial id
    assert sorted(trials) == ["0", "1", "2", "3", "4", "5"]
    assert {r.info.status for r in trials.values()} == {"FINISHED"}
    assert {r.data.tags["mnv1.trial_status"] for r in trials.values()} == {"COMPLETED"}
    assert {r.data.tags["mnv1.tuner_id"] for r in trials.values()} == {"worker0", "worker1"}
    rerun = trials["2"]
    assert int(rerun.data.tags["mnv1.attempt"]) >= 2, done.stdout
    assert ts.steps(rerun, "val_top1") == [1, 2]
    killed_worker = rerun.data.tags["mnv1.tuner_id"]
    # The launcher restarted that worker under its own id, and the oracle gave it its trial back.
    assert f"worker {killed_worker} exited with -9: restarting it under the same id" in done.stdout
    parent = ts.kind("tune")[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.metrics["chief_exit_after_last_trial_s"] < 30
    oracle = json.loads(next((ts.root / "tune" / "smoke").glob("*/oracle.json")).read_text())
    assert oracle["ongoing_trials"] == {}  # saved after the last trial, so a relaunch reruns none
    again = ts.cli("mnv1-tune", *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(ts.trials()) == 6


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_real_training_tunes_the_smoke_study_and_feeds_mnv1_train(ts: TuneSpace) -> None:
    """Two real trials through the training worker, then the cell trained with the best one."""
    tuned = ts.cli("mnv1-tune", *ts.args("tune.max_trials=2"), timeout=1100)
    assert tuned.returncode == 0, tuned.stdout + tuned.stderr
    trials = ts.trials()
    assert sorted(trials) == ["0", "1"]
    for trial in trials.values():
        assert trial.info.status == "FINISHED"
        assert trial.data.tags["mnv1.trial_status"] == "COMPLETED"
        # Scored on the last 10% of the 64 training images, not on the 32 validation images.
        assert trial.data.metrics["val_examples"] == 6
        assert ts.steps(trial, "val_top1") == [1, 2]
    entry = read_tuned(ts.tuned).cells[CELL]
    best = trials[entry.trial_id]
    assert entry.run_id == best.info.run_id
    assert entry.val_top1 == pytest.approx(max(r.data.metrics["val_top1"] for r in trials.values()))

    sweep = ts.cli(
        "mnv1-train",
        "-m",
        "experiment=smoke",
        "model.alpha=0.25",
        "model.resolution=32",  # the one tuned cell of the grid
        f"tuned={ts.tuned}",
        f"data.data_dir={ts.root / 'tfds'}",
        f"tracking.report_dir={ts.root / 'report'}",
        timeout=1100,
    )
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    cells = [r for r in ts.runs("smoke") if r.data.tags.get("mnv1.kind") == "cell"]
    assert len(cells) == 1
    cell = cells[0]
    assert cell.info.status == "FINISHED"
    assert cell.data.tags["mnv1.tuned"] == "true"
    assert cell.data.tags["mnv1.tuned_from"] == best.info.run_id
    for key, value in entry.overrides.items():
        assert cell.data.params[key] == str(value)
    assert "data.holdout_percent" not in cell.data.params or (
        cell.data.params["data.holdout_percent"] == "None"
    )
    assert cell.data.metrics["val_examples"] == 32  # the sweep evaluates on the validation split
    # The tuned values are in the run key (the file's path is not).
    grid = ["experiment=smoke", "model.alpha=0.25", "model.resolution=32"]
    keys = [
        run_key(check_command([*grid, *extra], multirun=True).cells[0].config)
        for extra in ([f"tuned={ts.tuned}"], [])
    ]
    assert cell.data.tags["mnv1.run_key"] == keys[0] != keys[1]
    rows = list(csv.reader(io.StringIO((ts.root / "report" / "grid.csv").read_text())))
    assert rows[0][4] == "Recipe" and rows[1][4] == "tuned"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_chief_and_a_worker_started_by_hand_as_on_other_hosts(ts: TuneSpace) -> None:
    """No launcher: the README's multi-host recipe on one host. The chief owns the parent run
    and writes the tuned file; the worker finds the search by its key."""
    port = free_port("127.0.0.1")
    ts.extra_env.update(ts.standin_env())
    args = ts.args("tune.max_trials=2")
    script = str(Path(sys.executable).with_name("mnv1-tune"))
    common = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}
    # The store exists before the processes start, as a tracking server's does (two processes
    # creating one fresh SQLite file race on its schema; the launcher creates it first).
    assert ts.client().get_experiment_by_name("smoke_tune") is None
    procs = [
        subprocess.Popen(
            [script, *args],
            cwd=ts.root,
            env=ts.env(KERASTUNER_TUNER_ID=tuner_id, **common),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for tuner_id in ("chief", "hostb0")
    ]
    try:
        outputs = [p.communicate(timeout=800)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0], "\n".join(outputs)
    parent = ts.kind("tune")[0]
    trials = ts.trials()
    assert sorted(trials) == ["0", "1"]
    assert {r.data.tags["mnv1.tuner_id"] for r in trials.values()} == {"hostb0"}
    assert {r.data.tags["mlflow.parentRunId"] for r in trials.values()} == {parent.info.run_id}
    assert parent.info.status == "FINISHED" and "trials.csv" in ts.artifacts(parent)
    assert ts.tuned_file()["cells"][CELL]["search_run_id"] == parent.info.run_id
