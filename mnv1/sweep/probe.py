"""Measure (or recall) the plan's probe: how fast the grid's costliest and cheapest cells train on
this machine.

Each probed cell is a short real run in a process of its own, ``python -m mnv1.training.probe``,
started the way ``mnv1.sweep.orchestrate`` starts a cell's worker (``mnv1.sweep.warm``: forked from
this process's zygote where the cells start warm, so the start-up it measures is a cell's start-up,
and the zygote it starts is the one the cells then use; what starting that zygote took is recorded
apart, as ``zygote_start_s``, a once-per-launch cost), in a temporary directory, logging into a
throwaway SQLite store opened here as a cell's run is; its exit is timed here. The first process
also counts the mult-adds of every shape of the grid, which places the other cells between the two
probed ones (``mnv1.sweep.plan``).

The result is cached per host and per probe identity, in ``$MNV1_PROBE_DIR`` or else
``~/.cache/mnv1/probe/<key>.json``: a relaunch of the same sweep on the same machine reuses it, so
it pays no probe and, for a study with ``train.target_minutes``, chooses the same budget (the same
run keys). The identity covers what decides a step's speed (model shape, batch, precision, XLA,
distribution, thread settings) and what the short run measures besides (the epochs it runs, its
validation images, the data's kind, what is tracked), the versions of TensorFlow, Keras and mnv1,
and the devices this process may see; not the training budget, which the plan derives from the
probe.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import filelock

from mnv1 import interrupt
from mnv1.config import RunConfig, to_dict
from mnv1.run_key import short_key
from mnv1.sweep.plan import Probe, ProbePoint, num_classes, shape_of, split_sizes
from mnv1.sweep.warm import WorkerProcess, prestart, serving, start_worker
from mnv1.training.probe import PROBE_EPOCHS, ProbeRequest, ProbeResult, probe_val_examples
from mnv1.worker_contract import PROBE_MODULE, spawn_env

ENV_PROBE_DIR = "MNV1_PROBE_DIR"
PROBE_TIMEOUT_S = 900.0
STDERR_TAIL_CHARS = 3000


class ProbeError(RuntimeError):
    """The probe process failed; the message carries the end of its stderr."""


def probe_dir() -> Path:
    configured = os.environ.get(ENV_PROBE_DIR)
    return Path(configured).expanduser() if configured else Path.home() / ".cache/mnv1/probe"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def _speed_identity(cfg: RunConfig) -> dict[str, Any]:
    """What the probe's short run of ``cfg`` depends on: its step (model, batch, precision, XLA,
    distribution) and what it measures besides (the epochs it runs, the validation images, the
    stand-in data, what is tracked, export)."""
    d = to_dict(cfg)
    train, data, tracking = d["train"], d["data"], d["tracking"]
    return {
        "model": d["model"],
        "classes": num_classes(cfg),
        "train": {
            **{k: train[k] for k in ("batch_size", "precision", "jit_compile", "optimizer")},
            "probe_epochs": min(cfg.train.epochs, PROBE_EPOCHS),
            "bn_recalibration_batches": train["bn_recalibration_batches"],
        },
        "val": probe_val_examples(split_sizes(cfg)[1]),
        "data": {
            "source": data["source"],
            "augment": data["augment"],
            "cache": data["cache"],
            "image_size": data["synthetic"]["image_size"],
        },
        "tracking": {k: tracking[k] for k in ("log_model", "system_metrics_interval_s")},
        "distribute": d["distribute"],
        # With export on, the probe also times the LiteRT conversion and interpreter runs.
        "export": d["export"]["enabled"],
    }


def shapes_of(cells: Sequence[RunConfig]) -> dict[str, RunConfig]:
    """The first cell of each shape, in grid order."""
    shapes: dict[str, RunConfig] = {}
    for cfg in cells:
        shapes.setdefault(shape_of(cfg), cfg)
    return shapes


def probe_key(cells: Sequence[RunConfig]) -> str:
    shapes = shapes_of(cells)
    payload = {
        "host": socket.gethostname(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "versions": {p: _version(p) for p in ("tensorflow", "keras", "mnv1")},
        "shapes": {s: _speed_identity(c) for s, c in sorted(shapes.items())},
    }
    return short_key(payload)


def _throwaway_run(folder: Path, name: str) -> tuple[str, str]:
    """A run in a SQLite store in ``folder`` (as a sweep's default store; created by the first
    call, as a sweep creates its store before its cells), opened here as the orchestrator opens
    a cell's run: the probe process logs into it as a worker does."""
    from mnv1.tracking import runs
    from mnv1.tracking.store import ensure_experiment

    uri = f"sqlite:///{folder / 'probe.db'}"
    # MLflow announces the new store's tables; this store is the probe's own, thrown away.
    quiet = logging.getLogger("mlflow.store.db.utils")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        experiment = ensure_experiment(uri, "probe")
    finally:
        quiet.setLevel(level)
    return uri, runs.create(uri, experiment, name, {})


def _run_probe(request: ProbeRequest, shared: Path, warm: bool) -> tuple[ProbeResult, float]:
    """The probe process's answer, and the seconds its exit took (from the moment it had
    nothing left to do, as it said, to the moment this process saw it gone). The throwaway
    store and the stand-in data live in ``shared``, which the probes of one grid share (the
    second finds both made). The process starts as the grid's cells will (``warm``: forked from
    this process's zygote, which the cells then reuse)."""
    with tempfile.TemporaryDirectory(prefix="probe-", dir=shared) as tmp:
        folder = Path(tmp)
        uri, run_id = _throwaway_run(shared, request.time)
        request = dataclasses.replace(
            request,
            run_uri=uri,
            run_id=run_id,
            data_dir=str(shared / "tfds"),
            work_dir=str(folder / "run"),
        )
        (folder / "request.json").write_text(json.dumps(request.to_dict()))
        # The environment a cell's worker gets (mnv1.sweep.orchestrate), so a warm probe is
        # forked by the zygote the cells will use; the probe measures its start-up from the
        # spawn time.
        env = spawn_env(os.environ)
        argv = ["--in", str(folder / "request.json"), "--out", str(folder / "result.json")]
        code, stderr = _wait(_start(argv, env, warm, tmp))
        gone = time.time()
        result_file = folder / "result.json"
        if code != 0 or not result_file.exists():
            raise ProbeError(f"the probe process exited {code}:\n{stderr[-STDERR_TAIL_CHARS:]}")
        result = ProbeResult.from_dict(json.loads(result_file.read_text()))
        return result, max(0.0, gone - result.point.ended_at)


def _start(argv: list[str], env: dict[str, str], warm: bool, cwd: str) -> WorkerProcess:
    """The probe process, started whole: a signal that arrives while the zygote forks it is
    raised only once its handle is here, and the probe is then stopped and waited for, so it
    never runs on, unowned, in a folder that is being removed (a SIGTERM to the launch's
    process group landed there once and left the probe's folder behind)."""
    started: list[WorkerProcess] = []
    try:
        with interrupt.held():
            started.append(start_worker(argv, env, warm=warm, module=PROBE_MODULE, cwd=cwd))
    except BaseException:
        for proc in started:
            proc.kill()
            proc.wait()
        raise
    return started[0]


def _wait(proc: WorkerProcess) -> tuple[int, str]:
    """The probe process's exit code and its stderr (read as it comes, so a full pipe never
    stalls it); killed after ``PROBE_TIMEOUT_S`` or when this process is interrupted."""
    assert proc.stderr is not None
    stream = proc.stderr
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.extend(stream), daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.wait()
        raise ProbeError(f"the probe process took over {PROBE_TIMEOUT_S:.0f} s") from exc
    except BaseException:  # Ctrl-C: the probe goes with the launch
        proc.kill()
        proc.wait()
        raise
    reader.join(timeout=10.0)
    return code, "".join(chunks)


def _zygote_start(warm: bool) -> float | None:
    """Start this process's zygote for the cells' environment (unless it runs already) and
    return what that took: the once-per-launch cost a warm sweep pays at its first cell, which
    the plan adds (``Plan.launch_s``). None where the cells start cold, or the zygote cannot
    serve here (the probe then starts cold too, as the cells will)."""
    if not warm:
        return None
    env = spawn_env(os.environ)
    up = serving(env)
    started = time.perf_counter()
    hello = prestart(env)
    seconds = time.perf_counter() - started
    if hello.get("problem"):
        return None
    # Up already (started by an earlier plan of this process): its imports, as it reported them.
    return float(hello.get("import_s", seconds)) if up else seconds


def _point(result: ProbeResult, exit_s: float) -> ProbePoint:
    return ProbePoint(**{**asdict(result.point), "exit_s": exit_s})


def _val_examples(shapes: dict[str, RunConfig]) -> dict[str, int]:
    """The validation images a cell of each shape evaluates, where known before its data is."""
    known = {s: split_sizes(c)[1] for s, c in shapes.items()}
    return {s: n for s, n in known.items() if n is not None}


def measure(cells: Sequence[RunConfig], say: Callable[[str], None] = print) -> Probe:
    """A short run of the costliest and of the cheapest shape of the grid, each in a process of
    its own started as the cells' workers will be, logging into a throwaway store."""
    # Made and removed whole: a signal that lands while the folder is being made is raised once
    # its name is known (a TemporaryDirectory interrupted between making the folder and
    # entering its block leaves it behind), and every probe's folder lies inside this one.
    shared: str | None = None
    try:
        with interrupt.held():
            shared = tempfile.mkdtemp(prefix="mnv1-probe-shared-")
        return _measure(cells, Path(shared), say)
    finally:
        if shared is not None:
            shutil.rmtree(shared, ignore_errors=True)


def _measure(cells: Sequence[RunConfig], shared: Path, say: Callable[[str], None]) -> Probe:
    shapes = shapes_of(cells)
    classes = {s: num_classes(c) for s, c in shapes.items()}
    val = _val_examples(shapes)
    warm = all(c.distribute.warm_workers for c in cells)
    zygote_s = _zygote_start(warm)
    how = "forked as the cells will be" if zygote_s is not None else "in a fresh process"
    say(f"probe: timing the costliest of {len(shapes)} shape(s), a short run {how}")
    first, exit_s = _run_probe(
        ProbeRequest(shapes, classes, "max", count=tuple(shapes), val=val),
        shared,
        zygote_s is not None,
    )
    mult_adds = first.mult_adds
    points = [_point(first, exit_s)]
    cheapest = min(mult_adds, key=lambda s: mult_adds[s] * shapes[s].train.batch_size)
    if cheapest != points[0].shape:
        say(f"probe: timing the cheapest, {cheapest}")
        second, exit_s = _run_probe(
            ProbeRequest(
                {cheapest: shapes[cheapest]},
                {cheapest: classes[cheapest]},
                cheapest,
                known={cheapest: mult_adds[cheapest]},
                val=val,
            ),
            shared,
            zygote_s is not None,
        )
        points.append(_point(second, exit_s))
    return Probe(
        host=socket.gethostname(),
        key=probe_key(cells),
        measured_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        points=tuple(points),
        mult_adds=mult_adds,
        zygote_start_s=zygote_s,
    )


def _to_json(probe: Probe) -> dict[str, Any]:
    return {
        "host": probe.host,
        "key": probe.key,
        "measured_at": probe.measured_at,
        "points": [p.__dict__ for p in probe.points],
        "mult_adds": probe.mult_adds,
        "zygote_start_s": probe.zygote_start_s,
    }


def _from_json(data: dict[str, Any]) -> Probe:
    return Probe(
        host=data["host"],
        key=data["key"],
        measured_at=data["measured_at"],
        points=tuple(ProbePoint(**p) for p in data["points"]),
        mult_adds={k: int(v) for k, v in data["mult_adds"].items()},
        zygote_start_s=data["zygote_start_s"],
        cached=True,
    )


def cached_probe(cells: Sequence[RunConfig]) -> Probe | None:
    path = probe_dir() / f"{probe_key(cells)}.json"
    try:
        return _from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent, or written by another version (no zygote_start_s): measure again


def get_probe(
    cells: Sequence[RunConfig], refresh: bool = False, say: Callable[[str], None] = print
) -> Probe:
    """The cached probe for this grid on this machine, else a fresh one (then cached).

    One launch at a time probes a grid: another launch of the same grid on this machine (a
    second sweep started meanwhile, the other worker of a parallel test run) waits on the lock
    and then reads the result, instead of timing the same cells again at the same time."""
    folder = probe_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(folder / f".{probe_key(cells)}.lock")):
        if not refresh:
            found = cached_probe(cells)
            if found is not None:
                return found
        return _measure_and_cache(cells, folder, say)


def _measure_and_cache(
    cells: Sequence[RunConfig], folder: Path, say: Callable[[str], None]
) -> Probe:
    probe = measure(cells, say)
    path = folder / f"{probe.key}.json"
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(_to_json(probe), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)  # atomic: two launches probing at once both leave a whole file
    return probe
