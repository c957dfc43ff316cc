"""Warm workers (``mnv1.sweep.warm``, ``mnv1.training.zygote``): each worker forked from a zygote.

The protocol tests run the real zygote and the real worker around the tuning tests' stand-in
training (``tests/tune_standin.py``, served by ``tests/failure_injection``): the zygote imports
the worker, MLflow and the stand-in (no TensorFlow), so each test takes seconds. What each worker
found in its process is recorded by the same test seam (``MNV1_TEST_RECORD_STATE``). The
end-to-end test trains two real cells through ``mnv1-train -m``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sweep_support import FAILURE_INJECTION, REPO, Workspace
from train_support import tiny_config

from mnv1.config import from_dict
from mnv1.sweep import warm
from mnv1.sweep.orchestrate import _run_worker, exit_status, run_attempt
from mnv1.training.zygote import fork_problem
from mnv1.worker_contract import EXIT_FAILED, EXIT_USAGE, spawn_env

# The stand-in reads these when it trains, so they may differ per worker under one zygote.
PER_REQUEST = ("MNV1_STANDIN_FAIL", "MNV1_STANDIN_HOLD")


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where every worker of this module records what it found (one zygote reads the path once)."""
    return tmp_path_factory.mktemp("warm") / "records.jsonl"


@pytest.fixture(scope="module", autouse=True)
def no_zygote_left() -> Iterator[None]:
    """The module's tests share a zygote where their environments agree; it ends with them."""
    yield
    zygote = warm.current()
    warm.shutdown()
    if zygote is not None:
        assert zygote.process.poll() is not None


def standin_env(records: Path, **extra: str) -> dict[str, str]:
    python_path = os.pathsep.join([str(FAILURE_INJECTION), str(REPO)])
    env = spawn_env(os.environ)
    env.update(
        PYTHONPATH=python_path,
        MNV1_TEST_TRIAL_STANDIN="1",
        MNV1_TEST_RECORD_STATE=str(records),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    env.update(extra)
    return env


def worker_args(tmp_path: Path, epochs: int = 1) -> list[str]:
    config = tmp_path / "run.json"
    config.write_text(json.dumps(tiny_config(tmp_path, train={"epochs": epochs})))
    return ["--config", str(config), "--run-log", f"jsonl:{tmp_path / 'run.jsonl'}"]


def record_of(records: Path, pid: int) -> dict[str, Any]:
    [found] = [r for r in map(json.loads, records.read_text().splitlines()) if r["pid"] == pid]
    return found


def start(args: list[str], env: dict[str, str]) -> warm.WorkerProcess:
    return warm.start_worker(args, env, warm=True, per_spawn=PER_REQUEST)


def alive(pid: int) -> bool:
    return warm._alive(pid)


def until(condition: Callable[[], bool]) -> None:
    """Wait for a state, not for a clock: a state that never comes ends the test at its time
    limit (pytest-timeout, with the stack of this wait)."""
    while not condition():
        time.sleep(0.05)


def until_gone(*pids: int) -> None:
    until(lambda: not any(alive(pid) for pid in pids))


def test_a_warm_worker_is_a_child_of_the_zygote_and_reports_exit_and_phases(
    tmp_path: Path, records: Path
) -> None:
    proc = start(worker_args(tmp_path), standin_env(records))
    assert proc.stderr is not None
    assert proc.wait() == 0, proc.stderr.read()
    zygote = warm.current()
    assert zygote is not None and zygote.hello is not None
    assert zygote.hello["problem"] is None and zygote.hello["threads"][0] == "mnv1-zygote"
    found = record_of(records, proc.pid)
    # Forked by the zygote (its death armed on it), asked for by this process.
    assert found["ppid"] == zygote.process.pid == int(found["parent_pid"])
    assert found["orchestrator_pid"] == str(os.getpid())
    assert found["run_log"] == f"jsonl:{tmp_path / 'run.jsonl'}"
    metrics: dict[str, float] = {}
    for line in (tmp_path / "run.jsonl").read_text().splitlines():
        metrics.update(json.loads(line).get("metrics", {}))
    # The phases are measured from the request: both are there, neither negative.
    assert metrics["time_process_start_s"] >= 0 and metrics["time_import_s"] >= 0


def test_each_request_brings_its_own_environment_and_a_failure_its_exit_and_traceback(
    tmp_path: Path, records: Path
) -> None:
    env = standin_env(records)
    failing = start(worker_args(tmp_path), {**env, "MNV1_STANDIN_FAIL": "always"})
    assert failing.stderr is not None
    tail = failing.stderr.read()
    assert failing.wait() == EXIT_FAILED
    assert "Traceback" in tail and "stand-in: told to fail every trial" in tail
    zygote = warm.current()
    assert zygote is not None
    # The next worker of the same zygote does not see the variable the last request set.
    fine = start(worker_args(tmp_path), env)
    assert fine.wait() == 0
    assert warm.current() is zygote
    assert record_of(records, fine.pid)["ppid"] == record_of(records, failing.pid)["ppid"]
    # A bad command line: the worker's own usage error, exit 2.
    usage = start(["--bogus"], env)
    assert usage.stderr is not None
    assert usage.wait() == EXIT_USAGE
    assert "the following arguments are required: --config" in usage.stderr.read()


def test_a_signal_ends_a_warm_worker_with_a_negative_code_read_as_killed(
    tmp_path: Path, records: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the worker works in the requester's directory
    env = standin_env(records, MNV1_STANDIN_HOLD="1")
    for signum, stop in ((signal.SIGKILL, "kill"), (signal.SIGTERM, "terminate")):
        proc = start(worker_args(tmp_path, epochs=2), env)
        # Once the child has taken the request over (it runs on, so this holds for good):
        # named as a worker, in the requester's directory.
        proc_dir = Path(f"/proc/{proc.pid}")
        until(lambda: (proc_dir / "comm").read_text() == "mnv1-worker\n")  # noqa: B023
        until(lambda: (proc_dir / "cwd").resolve() == tmp_path.resolve())  # noqa: B023
        # The held stand-in (MNV1_STANDIN_HOLD) trains on until a signal ends it.
        assert proc.poll() is None
        # In this process's group: a terminal's Ctrl-C reaches it.
        assert os.getpgid(proc.pid) == os.getpgid(0)
        getattr(proc, stop)()
        assert proc.wait() == -signum
        assert exit_status(proc.wait()) == ("KILLED", f"signal {signum} ({signum.name})")


def test_the_orchestrator_keeps_the_tail_of_a_warm_workers_stderr(
    tmp_path: Path, records: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mnv1.tracking import runs
    from mnv1.tracking.store import client

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = runs.create(uri, client(uri).create_experiment("warm"), "cell", {})
    config = tmp_path / "run.json"
    config.write_text(json.dumps(tiny_config(tmp_path)))
    for key, value in standin_env(records).items():
        monkeypatch.setenv(key, value)
    code, tail = _run_worker(config, run_id, uri, None, extra_env={"MNV1_STANDIN_FAIL": "always"})
    assert code == EXIT_FAILED
    assert "RuntimeError: stand-in: told to fail every trial" in tail
    assert warm.current() is not None  # it ran warm
    assert "traceback.txt" in [a.path for a in client(uri).list_artifacts(run_id)]


@pytest.mark.parametrize("warm_workers", [True, False])
def test_distribute_warm_workers_chooses_a_fork_or_a_fresh_interpreter_for_the_run(
    tmp_path: Path, records: Path, monkeypatch: pytest.MonkeyPatch, warm_workers: bool
) -> None:
    from mnv1.tracking import runs
    from mnv1.tracking.store import client

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = runs.create(uri, client(uri).create_experiment("warm"), "cell", {})
    cfg = from_dict(tiny_config(tmp_path, distribute={"warm_workers": warm_workers}))
    for key, value in standin_env(records).items():
        monkeypatch.setenv(key, value)
    attempt = run_attempt(cfg, uri, run_id, tmp_path / "work")
    assert attempt.status == "FINISHED", attempt
    [found] = [
        r
        for r in map(json.loads, records.read_text().splitlines())
        if r["run_log"] == f"mlflow:{run_id}"
    ]
    zygote = warm.current()
    if warm_workers:
        assert zygote is not None and found["ppid"] == zygote.process.pid
    else:
        assert found["ppid"] == os.getpid() and found["parent_pid"] is None


def test_another_environment_gets_another_zygote_and_the_old_one_ends(
    tmp_path: Path, records: Path
) -> None:
    first = start(worker_args(tmp_path), standin_env(records))
    assert first.wait() == 0
    old = warm.current()
    assert old is not None
    # TF_CPP_MIN_LOG_LEVEL is read when TensorFlow is imported: a new value needs new imports.
    second = start(worker_args(tmp_path), standin_env(records, TF_CPP_MIN_LOG_LEVEL="1"))
    assert second.wait() == 0
    new = warm.current()
    assert new is not None and new is not old and old.process.poll() is not None
    assert record_of(records, second.pid)["ppid"] == new.process.pid != old.process.pid


def test_cold_spawn_is_a_fresh_interpreter_child_of_this_process(
    tmp_path: Path, records: Path
) -> None:
    proc = warm.start_worker(worker_args(tmp_path), standin_env(records), warm=False)
    assert isinstance(proc, subprocess.Popen)
    assert proc.wait() == 0
    found = record_of(records, proc.pid)
    assert found["ppid"] == os.getpid() and found["parent_pid"] is None


def test_shutdown_ends_the_zygote_and_the_worker_it_still_runs(
    tmp_path: Path, records: Path
) -> None:
    proc = start(worker_args(tmp_path, 2), standin_env(records, MNV1_STANDIN_HOLD="1"))
    zygote = warm.current()
    assert zygote is not None
    warm.shutdown()
    assert zygote.process.poll() is not None
    assert proc.wait() == -signal.SIGTERM
    assert not alive(proc.pid)


def test_a_zygote_closed_during_its_imports_is_killed_at_once(records: Path) -> None:
    # An interrupt during the first cell's start: the launch does not wait for the imports.
    env = standin_env(records)
    zygote = warm.Zygote(env, warm.zygote_key(env))
    zygote.close()
    assert zygote.process.returncode == -signal.SIGKILL


OWNER = """
import json, os, sys, time
from mnv1.sweep import warm
from mnv1.worker_contract import spawn_env
env = {**spawn_env(os.environ), **json.loads(sys.argv[1])}
proc = warm.start_worker(sys.argv[2:], env, warm=True, per_spawn=())
print(warm.current().process.pid, proc.pid, flush=True)
time.sleep(600)
"""


def test_a_killed_orchestrator_takes_its_zygote_and_worker_along(
    tmp_path: Path, records: Path
) -> None:
    env = standin_env(records, MNV1_STANDIN_HOLD="1")
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, json.dumps(env), *worker_args(tmp_path, 2)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert owner.stdout is not None
        zygote, worker = map(int, owner.stdout.readline().split())
        assert alive(zygote) and alive(worker)
        os.kill(zygote, signal.SIGINT)  # a Ctrl-C is the orchestrator's to act on
        assert owner.poll() is None and alive(zygote)
        owner.kill()  # outright, as a Ray worker or a SLURM step can be
        owner.wait()
        until_gone(zygote, worker)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()


def test_the_zygote_refuses_to_fork_beside_another_python_thread() -> None:
    assert "pump" not in (fork_problem() or "")
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="pump", daemon=True)
    thread.start()
    try:
        problem = fork_problem()
        assert problem is not None and problem.startswith("Python threads besides the main one")
        assert "pump" in problem
    finally:
        stop.set()
        thread.join()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_cells_run_by_warm_workers_share_no_state(ws: Workspace) -> None:
    """Two real cells in one launch: both forked by its one zygote, each in a process of its own
    that finds nothing the other left (a module-level variable, Keras's name counter), each
    training into its own MLflow run."""
    records = ws.root / "records.jsonl"
    python_path = os.pathsep.join([str(FAILURE_INJECTION), ws.env()["PYTHONPATH"]])
    done = ws.train(
        "-m",
        "experiment=smoke",
        "model.alpha=0.25",
        "model.resolution=32,48",
        "train.epochs=1",
        "tracking.log_model=false",
        "tracking.report=false",
        env={"PYTHONPATH": python_path, "MNV1_TEST_RECORD_STATE": str(records)},
    )
    assert done.returncode == 0, done.stdout
    # The probe trains in a process of its own too; the cells' workers have a run log.
    found = [r for r in map(json.loads, records.read_text().splitlines()) if r["run_log"]]
    children = ws.children()
    assert (
        sorted(r["cell"] for r in found)
        == sorted(children)
        == [
            "mnv1_a0.25_r32",
            "mnv1_a0.25_r48",
        ]
    )
    assert len({r["pid"] for r in found}) == 2
    [zygote] = {r["ppid"] for r in found}  # one zygote forked both
    for record in found:
        assert int(record["parent_pid"]) == zygote != int(record["orchestrator_pid"])
        assert record["module_state_seen"] is None
        assert record["keras_uid"] == 1
        run = children[record["cell"]]
        assert record["run_log"] == f"mlflow:{run.info.run_id}"
        assert run.info.status == "FINISHED"
    assert not warm._alive(zygote)  # it ended with the launch


def test_a_spawned_process_never_inherits_its_spawners_zygote_as_parent() -> None:
    env = spawn_env({"MNV1_WORKER_PARENT_PID": "12345", "KEEP": "1"})
    assert "MNV1_WORKER_PARENT_PID" not in env and env["KEEP"] == "1"
    assert env["MNV1_ORCHESTRATOR_PID"] == str(os.getpid())


def test_the_zygote_the_plan_started_serves_the_sweeps_cells(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The plan's probe starts the zygote before the sweep has its parent run; every job then
    carries the sweep's identity in its environment (``hydra.job.env_set``). That identity must
    not key the zygote, or the first cell would start a second one and pay its start again."""
    from mnv1.sweep import orchestrate
    from mnv1.sweep.orchestrate import SweepRef

    planned = warm.zygote_key(spawn_env(os.environ))
    for name, value in SweepRef("run", "key", "7", f"sqlite:///{tmp_path}/m.db").env().items():
        monkeypatch.setenv(name, value)
    # And MLflow's telemetry session, which it sets in this process when the sweep opens its store.
    monkeypatch.setenv("_MLFLOW_TELEMETRY_SESSION_ID", "a-session")
    asked: list[tuple[tuple[str, str], ...]] = []

    class Asked(Exception):
        pass

    def start_worker(argv: list[str], env: dict[str, str], **kw: Any) -> None:
        asked.append(warm.zygote_key(env, kw.get("per_spawn", ())))
        raise Asked

    monkeypatch.setattr(orchestrate, "start_worker", start_worker)
    with pytest.raises(Asked):
        _run_worker(tmp_path / "run.json", "r1", f"sqlite:///{tmp_path}/m.db", "", warm=True)
    assert asked == [planned]
