"""``mnv1-tune`` through its own code path (plan, KerasTuner tuner, MLflow SQLite store, tuned
file) with a stand-in trial trained in this process, whose val_top1 is a known function of the
trial's values (``tune_standin.objective``); and the command's validation, which refuses a bad
space or override with exit 2 before TensorFlow starts."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from probe_support import write_probe
from tune_support import CELL, TuneSpace, expected_top1, in_process

from mnv1.cli.plan import planned as sweep_plan
from mnv1.cli.tune import EXIT_FAILED, Plan, plan, run, with_sweep_budget
from mnv1.config import RunConfig
from mnv1.hydra_app.grid import check_command
from mnv1.run_key import run_key
from mnv1.sweep.probe import ENV_PROBE_DIR
from mnv1.tune.space import SpaceError, load_space, space_problems
from mnv1.tune.tuned_file import apply_tuned, write_tuned
from mnv1.tuned import TunedCell


@pytest.fixture
def ts(tmp_path: Path) -> TuneSpace:
    return TuneSpace(tmp_path)


def planned(ts: TuneSpace, *extra: str, cell: str = CELL) -> Plan:
    found = plan(ts.args(*extra, cell=cell))
    assert isinstance(found, Plan), found
    return found


@pytest.mark.timeout(600)
def test_four_trials_one_parent_the_argmax_and_a_rerun_adds_nothing(ts: TuneSpace) -> None:
    p = planned(ts, "tune.max_trials=4")
    assert run(p, [], launch=in_process()) == 0

    parents, trials = ts.kind("tune"), ts.trials()
    assert len(parents) == 1 and sorted(trials) == ["0", "1", "2", "3"]
    parent = parents[0]
    for trial in trials.values():
        assert trial.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert trial.info.status == "FINISHED"
        assert trial.data.tags["mnv1.trial_status"] == "COMPLETED"
        # Scored on the held-out tail of the training split, never the validation split.
        assert trial.data.params["data.holdout_percent"] == "10"
        assert trial.data.metrics["val_top1"] == pytest.approx(expected_top1(trial))
        assert ts.steps(trial, "val_top1") == [1, 2]  # the smoke study's two epochs, once each
    best = max(trials.values(), key=lambda r: r.data.metrics["val_top1"])

    entry = ts.tuned_file()["cells"][CELL]
    assert entry["run_id"] == best.info.run_id
    assert entry["val_top1"] == pytest.approx(best.data.metrics["val_top1"])
    assert set(entry["overrides"]) == set(load_space("default").keys)
    for key, value in entry["overrides"].items():
        assert str(value) == best.data.params[key]
    assert parent.data.tags["mnv1.best_run_id"] == best.info.run_id
    assert parent.data.metrics["best_val_top1"] == pytest.approx(entry["val_top1"])
    assert {"search_space.json", "trials.csv", "trials.png"} <= ts.artifacts(parent)
    rows = ts.text(parent, "trials.csv").splitlines()
    assert rows[0].startswith("trial_id,status,train.learning_rate")
    assert len(rows) == 5 and all(",COMPLETED," in r for r in rows[1:])

    # Relaunching the finished search runs nothing and creates no run.
    assert run(planned(ts, "tune.max_trials=4"), [], launch=in_process()) == 0
    assert len(ts.runs()) == 5
    assert ts.kind("tune")[0].info.status == "FINISHED"

    # Raising max_trials continues the same search under the same parent.
    assert run(planned(ts, "tune.max_trials=5"), [], launch=in_process()) == 0
    assert len(ts.kind("tune")) == 1 and len(ts.trials()) == 5


@pytest.mark.timeout(600)
def test_failed_trials_and_the_consecutive_failure_limit(
    ts: TuneSpace, capsys: pytest.CaptureFixture[str]
) -> None:
    limit = 0.1
    raising = in_process({"MNV1_STANDIN_FAIL_ABOVE": f"train.label_smoothing={limit}"})
    assert run(planned(ts, "tune.max_trials=4"), [], launch=raising) == 0
    trials = ts.trials()
    assert len(trials) == 4
    failed = {i for i, r in trials.items() if float(r.data.params["train.label_smoothing"]) > limit}
    assert failed and failed != set(trials)  # the seed gives both kinds
    for trial_id, trial in trials.items():
        if trial_id in failed:
            assert trial.info.status == "FAILED"
            assert trial.data.tags["mnv1.trial_status"] == "FAILED"
            assert "above 0.1" in ts.text(trial, "traceback.txt")
        else:
            assert trial.data.tags["mnv1.trial_status"] == "COMPLETED"
    done = [trials[i] for i in sorted(set(trials) - failed)]
    best = max(done, key=lambda r: r.data.metrics["val_top1"])
    assert ts.tuned_file()["cells"][CELL]["run_id"] == best.info.run_id

    # A runner that always raises: the search stops after the configured number of failures.
    other = "mnv1_a0.5_r32"
    always = in_process({"MNV1_STANDIN_FAIL": "always"})
    p = planned(ts, "tune.max_trials=4", "tune.max_consecutive_failed_trials=2", cell=other)
    assert run(p, [], launch=always) == EXIT_FAILED
    parent = next(r for r in ts.kind("tune") if r.data.tags["mnv1.cell"] == other)
    children = [r for r in ts.kind("trial") if r.data.tags["mnv1.cell"] == other]
    assert parent.info.status == "FAILED"
    assert len(children) == 2 and {r.info.status for r in children} == {"FAILED"}
    assert "0/2 trials completed, no completed trial; stopped after consecutive failures" in (
        capsys.readouterr().out
    )
    assert other not in ts.tuned_file()["cells"]


@pytest.mark.timeout(600)
def test_trials_train_at_the_budget_their_studys_sweep_chooses(
    ts: TuneSpace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A study with a 3-minute target: ``mnv1-train -m`` chooses its budget from the cached
    probe (4 cells × 12 s start-up, 2 epochs × 1 s per step each: (180 - 48) / 8 = 16, rounded
    down to 15), and every trial trains that same train.steps_per_epoch, as the tune plan says."""
    budget = ["train.steps_per_epoch=null", "train.target_minutes=3"]
    monkeypatch.setenv(ENV_PROBE_DIR, str(ts.root / "probe"))
    sweep_args = ["experiment=smoke", f"data.data_dir={ts.root / 'tfds'}", *budget]
    sweep = check_command(sweep_args, multirun=True)
    write_probe(ts.root / "probe", [c.config for c in sweep.cells])
    chosen = sweep_plan(
        sweep_args, sweep, check=lambda items: check_command(items, multirun=True)
    ).overrides
    assert chosen == ["train.steps_per_epoch=15"]

    args = ts.args("tune.max_trials=2", *budget)
    found = with_sweep_budget(planned(ts, "tune.max_trials=2", *budget), args)
    assert not isinstance(found, str), found
    p, pinned = found
    assert pinned == chosen and p.target_minutes == 3
    assert {c.train.steps_per_epoch for c in p.cells} == {15}
    assert run(p, [*args, *pinned], launch=in_process()) == 0
    trials = ts.trials()
    assert len(trials) == 2
    for trial in trials.values():
        assert trial.data.params["train.steps_per_epoch"] == "15"
        assert trial.data.params["train.target_minutes"] == "3.0"
    out = capsys.readouterr().out
    assert (
        "mnv1-tune: each trial trains 2×15 steps of 8 images (240 images), "
        "train.steps_per_epoch=15: the budget mnv1-train -m chooses on this machine for the "
        "study's 3-minute target (train.target_minutes)"
    ) in out
    # A pinned budget (or none to choose) is used as it is, without a probe.
    unpinned = with_sweep_budget(planned(ts, "tune.max_trials=2"), ts.args())
    assert not isinstance(unpinned, str), unpinned
    fixed, extra = unpinned
    assert extra == [] and fixed.target_minutes is None
    assert {c.train.steps_per_epoch for c in fixed.cells} == {2}


def test_spaces_are_checked_against_the_run_rules(tmp_path: Path) -> None:
    space = load_space("default")
    assert space.keys == [
        "train.learning_rate",
        "train.rmsprop_epsilon",
        "train.weight_decay",
        "train.label_smoothing",
        "model.dropout",
        "train.warmup_epochs",
    ]
    assert space_problems(space, [RunConfig()]) == []
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "train.learning_rat: {type: float, min: 0.1, max: 1}\n"
        "model.alpha: {type: choice, values: [0.5, 1.0]}\n"
        "train.weight_decay: {type: float, min: 0.0, max: 0.1, sampling: log}\n"
        "train.momentum: {type: float, min: 0.5, max: 0.2}\n"
    )
    with pytest.raises(SpaceError) as err:
        load_space(str(bad))
    assert len(err.value.problems) == 4
    text = "\n".join(err.value.problems)
    assert "train.learning_rat is not a config key (did you mean train.learning_rate?)" in text
    assert "model.alpha cannot be tuned" in text
    assert "sampling=log needs min > 0, got min=0.0" in text
    assert "min=0.5, max=0.2 must be numbers with min < max" in text
    rules = tmp_path / "rules.yaml"
    rules.write_text("train.warmup_epochs: {type: choice, values: [0.0, 1.0]}\n")
    found = space_problems(load_space(str(rules)), [RunConfig()])
    assert found == [
        f"tune.space {rules}: train.warmup_epochs=1.0 fails: train.warmup_epochs=1.0: must be a "
        "number in [0, train.epochs=1) (in mnv1_a1.0_r224)"
    ]


def test_bad_tune_overrides_exit_2_naming_each_before_tensorflow(ts: TuneSpace) -> None:
    """Every problem at once, exit 2, nothing created, and neither TensorFlow nor MLflow nor
    KerasTuner imported."""
    bad_space = ts.root / "space.yaml"
    bad_space.write_text("train.label_smoothing: {type: float, min: 0.0, max: 1.5}\n")
    args = [
        "experiment=smoke",
        "tune.max_trials=0",
        "tune.seed=0",
        "tune.oracle=hyperband",
        "tune.cells=[mnv1_a0.25_r32,mnv1_a9_r1]",
        f"tune.space={bad_space}",
    ]
    code = (
        "import sys; from mnv1.cli.tune import plan; "
        f"found = plan({args!r}); "
        "print('\\n'.join(found)); "
        "heavy = [m for m in ('tensorflow', 'keras', 'mlflow', 'keras_tuner') "
        "if m in sys.modules]; "
        "sys.exit(str(heavy) if heavy else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ts.root,
        env=ts.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for text in (
        "tune.max_trials=0: must be an integer >= 1",
        "tune.seed=0: must be an integer >= 1 (KerasTuner takes 0 for no seed)",
        "tune.oracle='hyperband': must be one of random, bayesian",
        "tune.cells: 'mnv1_a9_r1' is not a cell of study 'smoke'; its cells: mnv1_a0.25_r32, "
        "mnv1_a0.25_r48, mnv1_a0.5_r32, mnv1_a0.5_r48",
        "train.label_smoothing=1.5 fails: train.label_smoothing=1.5: must be a number in [0, 1)",
    ):
        assert text in done.stdout, done.stdout
    assert sorted(p.name for p in ts.root.iterdir()) == ["space.yaml"]

    cli = ts.cli("mnv1-tune", "experiment=smoke", "tune.space=nope", "tune.max_trials=-1")
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert "mnv1-tune: the configuration has 2 problem(s); nothing was started" in cli.stderr
    assert "tune.space='nope': no such search space; known: default" in cli.stderr
    assert sorted(p.name for p in ts.root.iterdir()) == ["space.yaml"]


def _tuned_cell(**overrides: float) -> TunedCell:
    return TunedCell(dict(overrides), 0.5, "0", "run0", "parent0")


def test_a_tuned_file_sets_a_cells_recipe_and_its_run_key(tmp_path: Path) -> None:
    cell = replace(RunConfig(), study="s")
    name = "mnv1_a1.0_r224"
    path = write_tuned(tmp_path / "a.yaml", "s", 10, {name: _tuned_cell(**{"model.dropout": 0.3})})
    tuned = apply_tuned(replace(cell, tuned=str(path)))
    assert tuned.model.dropout == 0.3 and tuned.tuned == str(path)
    assert run_key(tuned) != run_key(cell)
    # The values enter the run key, the file's path does not.
    copy = write_tuned(tmp_path / "b.yaml", "s", 10, {name: _tuned_cell(**{"model.dropout": 0.3})})
    assert run_key(apply_tuned(replace(cell, tuned=str(copy)))) == run_key(tuned)
    # A second cell merges into the file; the first stays.
    write_tuned(path, "s", 10, {"mnv1_a0.5_r224": _tuned_cell(**{"model.dropout": 0.1})})
    assert apply_tuned(replace(cell, tuned=str(path))).model.dropout == 0.3

    missing = replace(cell, tuned=str(path), model=replace(cell.model, alpha=0.75))
    with pytest.raises(ValueError, match=r"cell mnv1_a0\.75_r224 is not in the file"):
        apply_tuned(missing)
    with pytest.raises(ValueError, match="written for study 's', this run belongs to 'x'"):
        apply_tuned(replace(cell, tuned=str(path), study="x"))
    typo = write_tuned(tmp_path / "c.yaml", "s", 10, {name: _tuned_cell(**{"model.dropot": 0.1})})
    with pytest.raises(ValueError, match=r"model\.dropot is not a config key"):
        apply_tuned(replace(cell, tuned=str(typo)))


def test_mnv1_train_refuses_a_tuned_file_it_cannot_use(ts: TuneSpace) -> None:
    """A cell missing from the file, or a value the rules reject: exit 2 before anything."""
    path = write_tuned(
        ts.root / "t.yaml",
        "smoke",
        10,
        {
            "mnv1_a0.25_r32": _tuned_cell(**{"train.learning_rate": -1.0}),
            "mnv1_a0.25_r48": _tuned_cell(**{"train.learning_rate": 0.01}),
            "mnv1_a0.5_r32": _tuned_cell(**{"train.learning_rate": 0.01}),
        },
    )
    done = ts.cli("mnv1-train", "-m", "experiment=smoke", f"tuned={path}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cell mnv1_a0.5_r48 is not in the file" in done.stderr
    assert "train.learning_rate=-1.0: must be a number in (0, 100]" in done.stderr
    assert sorted(p.name for p in ts.root.iterdir()) == ["t.yaml", "t.yaml.lock"]


def _builder(**splits: int) -> SimpleNamespace:
    info = SimpleNamespace(splits={k: SimpleNamespace(num_examples=n) for k, n in splits.items()})
    return SimpleNamespace(info=info, name="fake", builder_config=None)


def test_the_held_out_slice_is_the_tail_of_the_training_portion() -> None:
    from mnv1.data.builders import resolve_splits

    synthetic = replace(RunConfig().data, holdout_percent=10)
    found = resolve_splits(_builder(train=64, validation=32), synthetic)
    assert (found.train, found.val, found.train_examples, found.val_examples) == (
        "train[:58]",
        "train[58:64]",
        58,
        6,
    )
    # A dataset without a validation split gives its tail to validation first; the held-out
    # slice comes from what is left for training, so it never overlaps that validation tail.
    tfds = replace(synthetic, source="tfds", name="fake", val_split="validation")
    found = resolve_splits(_builder(train=100), tfds)
    assert (found.train, found.val, found.val_examples) == ("train[:81]", "train[81:90]", 9)


def test_a_second_chief_cannot_share_the_port() -> None:
    """gRPC binds with SO_REUSEPORT by default, so KerasTuner's own chief would start on a port
    another chief serves; this one refuses it."""
    from mnv1.tune.tuner import serve_oracle

    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"cannot bind 127.0.0.1:{port}"):
            serve_oracle(object(), "127.0.0.1", port)


@pytest.mark.timeout(600)
def test_the_bayesian_oracle_is_its_own_search(ts: TuneSpace) -> None:
    assert run(planned(ts, "tune.max_trials=2"), [], launch=in_process()) == 0
    p = planned(ts, "tune.max_trials=2", "tune.oracle=bayesian")
    assert run(p, [], launch=in_process()) == 0
    parents = ts.kind("tune")
    assert len(parents) == 2 and len(ts.kind("trial")) == 4
    keys = {r.data.tags["mnv1.tune_key"] for r in parents}
    assert len(keys) == 2 and all(k.startswith(f"{CELL}-") for k in keys)
