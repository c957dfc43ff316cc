"""The plan learns from this host's finished cells (``mnv1.sweep.learned``): read from a real
SQLite MLflow store holding cell runs with the metrics, params and tags a sweep gives them, the
newest finished cell like the planned one gives its estimate, exactly; other cells stand on the
probe with this host's start-up; runs of other hosts, failed, resumed or unlike runs teach
nothing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from mnv1.tracking import runs, schema
from mnv1.tracking.store import client, ensure_experiment
from mnv1.tracking.timings import finished_cells
from test_plan import BIG, BIG_FIXED, PROBE, SMALL, SMALL_FIXED, cell, run_metrics

from mnv1.config import RunConfig, flatten, to_dict
from mnv1.run_key import run_key
from mnv1.sweep.learned import history, host_history, timing_identity
from mnv1.sweep.plan import format_plan, make_plan
from mnv1.timing import METRIC_CELL, METRIC_WORKER_WALL

HOST = socket.gethostname()
# BIG as it finished: 2 epochs × 10 steps of 10 images at 20 images/s (0.5 s a step), 30
# validation images; its phases add up to 28 s, the orchestrator timed the cell at 29 s.
FINISHED_RUN = run_metrics(
    process_start=1, imports=4, data=1, build=1, trace=3, train=19 * 0.5 + 1, evaluate=4,
    checkpoint=1, tracking=2, other=0.5, ips=20,
)  # fmt: skip


def add_cell(
    uri: str,
    cfg: RunConfig,
    metrics: dict[str, float],
    *,
    cell_s: float,
    ended: int,
    host: str = HOST,
    status: str = runs.FINISHED,
    attempt: str = "1",
) -> str:
    """A cell run as a sweep leaves it: identity params, phase and final metrics, the
    orchestrator's times and tags, ended at ``ended`` ms."""
    experiment = ensure_experiment(uri, cfg.study)
    tags = {
        schema.TAG_KIND: schema.KIND_CELL,
        schema.TAG_HOST: host,
        schema.TAG_RUN_KEY: run_key(cfg),
        schema.TAG_STEPS_PER_EPOCH: str(cfg.train.steps_per_epoch),
        schema.TAG_RESUMED_FROM_EPOCH: "0",
    }
    run_id = runs.create(uri, experiment, f"cell{ended}", tags)
    runs.set_tags(uri, run_id, {runs.TAG_ATTEMPT: attempt})
    runs.log_params(uri, run_id, flatten(to_dict(cfg)))
    runs.log_metrics(
        uri,
        run_id,
        {
            **metrics,
            METRIC_CELL: cell_s,
            METRIC_WORKER_WALL: cell_s - 0.25,
            schema.METRIC_VAL_EXAMPLES: 30.0,
            schema.METRIC_MULT_ADDS: 500.0,
        },
    )
    client(uri).set_terminated(run_id, status, end_time=ended)
    return run_id


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_a_finished_cell_gives_its_own_estimate_exactly(store: str) -> None:
    add_cell(store, BIG, FINISHED_RUN, cell_s=29.0, ended=1_000)
    seen = host_history(store)
    [big] = make_plan([BIG], PROBE, seen=seen).cells
    assert (big.source, big.mult_adds) == ("finished", 500)
    assert big.seconds == pytest.approx(29.0)  # the same budget: what it took
    longer = cell(1.0, 224, steps=20)
    [doubled] = make_plan([longer], PROBE, seen=seen).cells
    assert doubled.seconds == pytest.approx(29.0 + 2 * 10 * 0.5)  # 20 more steps of 0.5 s
    # The seed and the recipe's numbers change nothing it costs: still that cell.
    other = cell(1.0, 224)
    other.train.seed, other.train.learning_rate = 3, 0.5
    assert make_plan([other], PROBE, seen=seen).cells[0].seconds == pytest.approx(29.0)


def test_the_newest_like_cell_of_this_host_counts_and_others_teach_start_up(store: str) -> None:
    add_cell(store, BIG, FINISHED_RUN, cell_s=40.0, ended=1_000)  # older
    add_cell(store, BIG, FINISHED_RUN, cell_s=29.0, ended=2_000)
    add_cell(store, BIG, FINISHED_RUN, cell_s=99.0, ended=3_000, host="elsewhere")
    add_cell(store, BIG, FINISHED_RUN, cell_s=98.0, ended=4_000, status=runs.FAILED)
    add_cell(store, BIG, FINISHED_RUN, cell_s=97.0, ended=5_000, attempt="2")  # resumed
    wider = cell(1.0, 224)
    wider.train.batch_size = 20  # another batch: another cell, teaches only its start-up
    slow_start = {**FINISHED_RUN, "time_import_s": 8.0}
    add_cell(store, wider, slow_start, cell_s=33.0, ended=6_000)
    found = finished_cells(HOST, store)
    assert [c.metrics[METRIC_CELL] for c in found] == [33.0, 29.0, 40.0]
    seen = history(found, HOST)
    plan = make_plan([BIG, SMALL], PROBE, seen=seen)
    big, small = plan.cells
    assert (big.source, big.seconds) == ("finished", pytest.approx(29.0))
    # SMALL from its probe run, its 6 s start-up replaced by this host's: the median of the
    # newest cells' process start + import, 1 + 8, 1 + 4, 1 + 4.
    assert plan.startup is not None and plan.startup.seconds == pytest.approx(5.0)
    assert small.source == "probe"
    assert small.seconds == pytest.approx(SMALL_FIXED - 6 + 5 + 20 * 0.2)
    text = format_plan(plan)
    assert "figures: 1 cell(s) from the same cell finished on this host (the newest ended " in text
    assert "1 from the probe of that shape" in text
    assert "start-up (process, imports) of the others: 5.0 s, the median of this host's 3 " in text


def test_without_a_store_or_a_like_cell_the_plan_stands_on_the_probe(
    tmp_path: Path, store: str
) -> None:
    missing = tmp_path / "nowhere" / "mlflow.db"
    assert host_history(f"sqlite:///{missing}").cells == ()
    assert not missing.exists() and not missing.parent.exists()  # nothing created
    plan = make_plan([BIG], PROBE, seen=host_history(f"sqlite:///{missing}"))
    assert plan.cells[0].source == "probe" and plan.startup is None
    assert plan.cells[0].fixed_s == pytest.approx(BIG_FIXED)
    # A run without the phase timings (recorded before they existed) teaches nothing.
    add_cell(store, BIG, {"time_train_s": 1.0}, cell_s=29.0, ended=1_000)
    assert host_history(store).cells == ()


def test_what_decides_a_cells_cost_is_its_timing_identity() -> None:
    flat = flatten(to_dict(BIG))
    identity = timing_identity(flat)
    assert identity["model.alpha"] == "1.0" and identity["train.epochs"] == "2"
    assert identity["data.synthetic.val_size"] == "30" and "export.enabled" in identity
    for key in ("train.seed", "train.steps_per_epoch", "train.learning_rate", "data.data_dir"):
        assert key not in identity
    assert "tracking.uri" not in identity and identity["tracking.log_model"] == "True"
