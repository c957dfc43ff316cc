"""Picking the cell to deploy (``mnv1.report.pick``) and the flags of ``mnv1-report --register``.

The registry write itself runs on the smoke sweep (tests/test_sweep_e2e.py); here the choice is
checked on hand-made cells, and every bad flag combination exits 2 before the store is opened.
"""

from __future__ import annotations

import pytest
from mnv1.tracking.queries import CellRun

from mnv1.cli.report import main
from mnv1.report.pick import LATENCY_METRIC, Budget, NothingFits, pick, version_tags


def cell(name: str, top1: float, mult_adds: float, status: str = "FINISHED", **extra: float):
    alpha, resolution = name.split("_a")[1].split("_r")
    metrics = {
        "val_top1": top1,
        "val_top5": min(1.0, top1 + 0.2),
        "mult_adds": mult_adds,
        "alpha": float(alpha),
        "resolution": float(resolution),
        **extra,
    }
    return CellRun(
        run_id=f"id-{name}",
        run_name=name,
        status=status,
        start_time=0,
        end_time=1,
        parent_run_id="parent",
        run_key=name,
        sweep_key="sweep",
        variant="separable",
        metrics=metrics,
    )


CELLS = [
    cell("mnv1_a1_r224", 0.70, 568_740_352, **{LATENCY_METRIC: 30.0}),
    cell("mnv1_a0.5_r160", 0.60, 76_000_000, **{LATENCY_METRIC: 6.0}),
    cell("mnv1_a0.5_r128", 0.60, 49_000_000, **{LATENCY_METRIC: 4.0}),
    cell("mnv1_a0.25_r128", 0.40, 14_000_000, **{LATENCY_METRIC: 1.5}),
    cell("mnv1_a0.75_r224", 0.90, 317_000_000, status="FAILED"),
]


def test_the_best_finished_cell_within_the_budget_wins_ties_to_fewer_mult_adds() -> None:
    choice = pick(CELLS, "val_top1", Budget(max_mult_adds=100e6), "sweep")
    # a0.5_r160 and a0.5_r128 tie on top-1: the cheaper one wins; the FAILED cell never counts.
    assert choice.winner.run_name == "mnv1_a0.5_r128"
    assert (choice.finished, choice.fitting) == (4, 3)
    assert choice.reason == (
        "mnv1_a0.5_r128 (α 0.5, ρ 128, 49,000,000 mult-adds, 4.00 ms): val_top1 0.6000, the "
        "highest val_top1 of the 3 of 4 finished cells within --max-mult-adds 100,000,000; "
        "next: mnv1_a0.5_r160 at 0.6000"
    )
    assert pick(CELLS, "val_top1", Budget(), "sweep").winner.run_name == "mnv1_a1_r224"
    by_latency = pick(CELLS, "val_top5", Budget(max_latency_ms=5.0), "sweep")
    assert by_latency.winner.run_name == "mnv1_a0.5_r128" and by_latency.fitting == 2


def test_nothing_within_the_budget_names_the_closest_cell() -> None:
    with pytest.raises(NothingFits) as err:
        pick(CELLS, "val_top1", Budget(max_mult_adds=10e6), "s1")
    assert err.value.closest.run_name == "mnv1_a0.25_r128"
    assert str(err.value) == (
        "no cell of sweep s1 fits --max-mult-adds 10,000,000: the closest is mnv1_a0.25_r128 "
        "(α 0.25, ρ 128, 14,000,000 mult-adds, 1.50 ms), 40.0% over"
    )


def test_a_latency_budget_needs_measured_latencies() -> None:
    unmeasured = [cell("mnv1_a0.25_r128", 0.4, 14e6)]
    with pytest.raises(ValueError, match=r"--max-latency-ms 2: no cell of sweep s1 has a measured"):
        pick(unmeasured, "val_top1", Budget(max_latency_ms=2), "s1")
    with pytest.raises(ValueError, match="has no FINISHED cell with metric val_top1"):
        pick([CELLS[-1]], "val_top1", Budget(), "s1")


def test_the_version_tags_say_what_it_is_and_where_it_came_from() -> None:
    choice = pick(CELLS, "val_top1", Budget(max_latency_ms=5.0), "sweep-key")
    assert version_tags(choice, "sweep-key") == {
        "alpha": "0.5",
        "resolution": "128",
        "mult_adds": "49000000",
        "val_top1": "0.6",
        "budget": "--max-latency-ms 5",
        "sweep": "sweep-key",
        "run_id": "id-mnv1_a0.5_r128",
        "cell": "mnv1_a0.5_r128",
        LATENCY_METRIC: "4",
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-mult-adds", "5e6"], "--max-mult-adds needs --register NAME"),
        (["--metric", "val_top5"], "--metric goes with --compare A B or --register NAME"),
        (
            ["--register", "m", "--max-mult-adds", "5e6", "--max-latency-ms", "3"],
            "not allowed with argument",
        ),
        (["--register", "m", "--status"], "--register builds no report: it does not go with"),
        (["--register", "m", "--out", "r"], "it does not go with --out"),
        (["--register", "m", "--max-mult-adds", "-1"], "--max-mult-adds -1: must be a positive"),
        (["--register", "m", "--max-latency-ms", "0"], "--max-latency-ms 0: must be a positive"),
        (
            ["--register", "m", "--metric", "loss"],
            "--metric loss: with --register it must be one of val_top1, val_top5",
        ),
        (["--register", " "], "--register needs a non-empty registered model name"),
    ],
)
def test_bad_register_flags_exit_2_before_the_store_is_opened(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(SystemExit) as exit_:
        main(["--experiment", "smoke", "--tracking-uri", uri, *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "mlflow.db").exists()


def test_the_tracking_benchmark_times_each_variant_of_one_pinned_cell() -> None:
    from mnv1.bench.tracking import VARIANTS, _overrides
    from mnv1.cli.bench import build_parser

    args = build_parser().parse_args(["tracking", "--cell", "0.25:32", "--steps", "2"])
    assert list(VARIANTS) == ["base", "system metrics", "LoggedModel"]
    common = ["model.alpha=0.25", "model.resolution=32", "tracking.report=false"]
    assert _overrides(args, "base") == [
        *common,
        "tracking.log_model=false",
        "tracking.system_metrics_interval_s=0",
        "train.steps_per_epoch=2",
    ]
    assert _overrides(args, "system metrics") == [
        *common,
        "tracking.log_model=false",
        "tracking.system_metrics_interval_s=10",
        "train.steps_per_epoch=2",
    ]
    assert _overrides(args, "LoggedModel") == [
        *common,
        "tracking.log_model=true",
        "tracking.system_metrics_interval_s=0",
        "train.steps_per_epoch=2",
    ]
