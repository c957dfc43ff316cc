"""Phase timing: exclusive seconds per phase, a self-timing run_log, and a real run's phases."""

from __future__ import annotations

import pytest
from train_support import make_datasets, tiny_config

from mnv1 import timing
from mnv1.config import from_dict
from mnv1.runlog import MemoryRunLog, TimedRunLog
from mnv1.timing import PhaseRecorder
from mnv1.worker_contract import ENV_SPAWN_TIME, spawn_seconds


def recorder(*ticks: float) -> PhaseRecorder:
    """A recorder whose clock reads ``ticks``, one per reading."""
    clock = iter(ticks)
    return PhaseRecorder(clock=lambda: next(clock))


def test_nested_phases_count_each_second_once_in_the_innermost() -> None:
    phases = recorder(0.0, 1.0, 3.0, 4.0, 10.0)
    phases.begin("train")  # t=0
    phases.begin("evaluate")  # t=1
    with phases.measure("tracking"):  # t=3 .. t=4
        pass
    phases.end("evaluate")  # t=10: 9 s, of which 1 s tracking
    assert phases.totals == {"tracking": 1.0, "evaluate": 8.0}
    assert phases.is_open("train") and not phases.is_open("evaluate")


def test_closing_a_phase_closes_the_phases_left_open_inside_it() -> None:
    # An exception through fit skips Keras's on_test_end: ending "train" closes "evaluate" too.
    phases = recorder(0.0, 2.0, 5.0)
    phases.begin("train")
    phases.begin("evaluate")
    phases.end("train")  # t=5: evaluate 3 s, train 2 s
    assert phases.totals == {"evaluate": 3.0, "train": 2.0}
    assert not phases.is_open("train") and not phases.is_open("evaluate")


def test_closing_a_phase_that_is_not_open_is_refused() -> None:
    phases = recorder(0.0)
    phases.begin("build")
    with pytest.raises(ValueError, match=r"phase 'train' is not open \(open phases: \['build'\]\)"):
        phases.end("train")


def test_measure_closes_on_error_and_metrics_are_named_per_phase() -> None:
    phases = recorder(0.0, 0.5)
    with pytest.raises(RuntimeError), phases.measure("build"):
        raise RuntimeError("boom")
    phases.add("process_start", 0.25)
    assert phases.metrics() == {"time_build_s": 0.5, "time_process_start_s": 0.25}


def test_timed_tracker_passes_every_call_through_and_counts_it_as_tracking() -> None:
    inner = MemoryRunLog()
    phases = recorder(*[float(t) for t in range(14)])
    run_log = TimedRunLog(inner, phases)
    run_log.log_params({"a": 1})
    run_log.log_metrics({"loss": 2.0}, step=1)
    run_log.set_tags({"t": "v"})
    run_log.log_text("x.txt", "text")
    run_log.log_model("model", None)
    run_log.log_inputs(["train", "validation"])
    assert run_log.logged_metric_steps("loss") == [1]
    assert (
        inner.params == {"a": 1} and inner.tags == {"t": "v"} and inner.texts == {"x.txt": "text"}
    )
    assert inner.metrics == {"loss": [(1, 2.0)]} and inner.models == ["model"]
    assert inner.inputs == ["train", "validation"]
    assert phases.totals == {"tracking": 7.0}  # seven calls of one tick each


def test_timed_tracker_leaves_calls_from_other_threads_untimed() -> None:
    import threading

    inner = MemoryRunLog()
    phases = recorder()  # a clock that any reading would exhaust
    run_log = TimedRunLog(inner, phases)
    writer = threading.Thread(target=run_log.log_model, args=("model", None))
    writer.start()
    writer.join()
    assert inner.models == ["model"] and phases.totals == {}  # passed through, not timed


def test_spawn_seconds_reads_the_orchestrators_timestamp() -> None:
    assert spawn_seconds({ENV_SPAWN_TIME: "100.5"}, now=102.0) == 1.5
    assert spawn_seconds({ENV_SPAWN_TIME: "105"}, now=102.0) == 0.0  # clocks disagree
    assert spawn_seconds({}, now=102.0) is None
    assert spawn_seconds({ENV_SPAWN_TIME: "soon"}, now=102.0) is None


def test_a_real_run_records_its_phases(tmp_path) -> None:
    from mnv1.training.run import run_training

    cfg = from_dict(
        tiny_config(
            tmp_path,
            train={"epochs": 2, "steps_per_epoch": 3, "bn_recalibration_batches": 1},
            distribute={"cpu_replicas": None},
            tracking={"log_model": False},
        )
    )
    data = make_datasets(train_count=48, val_count=8, resolution=32, global_batch=16)
    phases = PhaseRecorder()
    inner = MemoryRunLog()
    run_training(
        cfg,
        TimedRunLog(inner, phases),
        datasets=data,
        checkpoint_dir=tmp_path / "ck",
        phases=phases,
    )
    measured = {"import", "build", "trace", "train", "evaluate", "checkpoint", "tracking"}
    assert set(phases.totals) == measured  # no data phase: the datasets were given
    assert all(seconds > 0 for seconds in phases.totals.values()), phases.totals
    assert not any(phases.is_open(name) for name in timing.PHASES)
    assert inner.logged_metric_steps("loss") == [1, 2]  # the wrapper changed nothing logged
