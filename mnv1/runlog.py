"""The small interface through which a training run reports what it does.

The training loop knows only this protocol. ``mnv1.tracking.runlog.MLflowRunLog`` backs it with
MLflow (the only place that imports mlflow); ``MemoryRunLog`` keeps everything in lists so tests
and benchmarks can run a real training without any store; ``JsonlRunLog`` appends to a file;
``TimedRunLog`` wraps any of them and counts its calls as phase ``tracking`` (``mnv1.timing``).
It sits below training, export and the sweep alike, which all write through it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mnv1.timing import TRACKING, PhaseRecorder


class RunLog(Protocol):
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record configuration values (flat, dotted keys)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record numeric values; ``step`` is the epoch for per-epoch metrics, None for finals."""

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Record string facts about the run (versions, devices, strategy)."""

    def log_text(self, name: str, text: str) -> None:
        """Attach a text artifact (a cost table, a model summary, a traceback)."""

    def log_inputs(self, inputs: Sequence[Any]) -> None:
        """Record the datasets the run read (``mnv1.data.inputs.DataInput``: what it trained
        on, what it was scored on)."""

    def log_model(self, model: Any, input_example: Any) -> None:
        """Attach the trained model. Trackers that cannot store models may ignore it."""

    def log_file(self, name: str, data: bytes) -> None:
        """Attach a binary file as artifact ``name`` (``tflite/model_int8.tflite``)."""

    def logged_metric_steps(self, key: str) -> list[int]:
        """Steps already recorded for ``key`` (how a resumed run avoids duplicating epochs)."""


@dataclass
class MemoryRunLog:
    """A RunLog that keeps everything in memory."""

    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, list[tuple[int | None, float]]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    models: list[Any] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    inputs: list[Any] = field(default_factory=list)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.params.update(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.metrics.setdefault(key, []).append((step, float(value)))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.tags.update({k: str(v) for k, v in tags.items()})

    def log_text(self, name: str, text: str) -> None:
        self.texts[name] = text

    def log_inputs(self, inputs: Sequence[Any]) -> None:
        self.inputs.extend(inputs)

    def log_model(self, model: Any, input_example: Any) -> None:
        self.models.append(model)

    def log_file(self, name: str, data: bytes) -> None:
        self.files[name] = data

    def logged_metric_steps(self, key: str) -> list[int]:
        return [step for step, _ in self.metrics.get(key, []) if step is not None]

    def last(self, key: str) -> float:
        """The most recent value of a metric (test convenience)."""
        return self.metrics[key][-1][1]


@dataclass
class JsonlRunLog:
    """A RunLog that appends one JSON object per call to a file (``--run-log jsonl:PATH``).

    A training process writes here when no MLflow run is wanted (tests, quick experiments);
    every line is flushed as it is written, so a process killed at any point leaves a readable
    file, and a relaunch appending to the same file finds the steps it already logged. Text
    artifacts are stored inline; ``log_model`` saves the model beside the file
    (``<stem>.model.keras``).
    """

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def _append(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, default=str) + "\n")

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._append({"kind": "params", "params": dict(params)})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        values = {k: float(v) for k, v in metrics.items()}
        self._append({"kind": "metrics", "step": step, "metrics": values})

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self._append({"kind": "tags", "tags": {k: str(v) for k, v in tags.items()}})

    def log_text(self, name: str, text: str) -> None:
        self._append({"kind": "text", "name": name, "text": text})

    def log_inputs(self, inputs: Sequence[Any]) -> None:
        self._append({"kind": "inputs", "inputs": [vars(i) for i in inputs]})

    def log_model(self, model: Any, input_example: Any) -> None:
        target = self.path.with_name(f"{self.path.stem}.model.keras")
        model.save(str(target))
        self._append({"kind": "model", "name": getattr(model, "name", ""), "path": str(target)})

    def log_file(self, name: str, data: bytes) -> None:
        # Beside the file, as the model is: <stem>.files/<name>.
        target = self.path.with_name(f"{self.path.stem}.files") / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        self._append({"kind": "file", "name": name, "path": str(target)})

    def records(self) -> list[dict[str, Any]]:
        """Every record written so far, in order (a half-written last line is ignored)."""
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut short by a killed process
        return out

    def metric_history(self, key: str) -> list[tuple[int | None, float]]:
        """``(step, value)`` of every record of ``key``, in the order they were logged."""
        return [
            (r["step"], r["metrics"][key])
            for r in self.records()
            if r["kind"] == "metrics" and key in r["metrics"]
        ]

    def logged_metric_steps(self, key: str) -> list[int]:
        return [step for step, _ in self.metric_history(key) if step is not None]

    def tags(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for record in self.records():
            if record["kind"] == "tags":
                merged.update(record["tags"])
        return merged

    def texts(self) -> dict[str, str]:
        return {r["name"]: r["text"] for r in self.records() if r["kind"] == "text"}


@dataclass
class TimedRunLog:
    """A RunLog that counts the time spent in every call of ``inner`` as phase ``tracking``.

    Only calls from the thread that created it are timed: a call made on another thread (the
    LoggedModel, written while the export converts, ``mnv1.training.run.log_end``) overlaps this
    thread's work, and its recorder is this thread's alone; the wait for it is timed where the
    thread waits.
    """

    inner: RunLog
    phases: PhaseRecorder
    owner: int = field(default_factory=threading.get_ident)

    def _timed(self) -> contextlib.AbstractContextManager[None]:
        if threading.get_ident() != self.owner:
            return contextlib.nullcontext()
        return self.phases.measure(TRACKING)

    def log_params(self, params: Mapping[str, Any]) -> None:
        with self._timed():
            self.inner.log_params(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        with self._timed():
            self.inner.log_metrics(metrics, step=step)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        with self._timed():
            self.inner.set_tags(tags)

    def log_text(self, name: str, text: str) -> None:
        with self._timed():
            self.inner.log_text(name, text)

    def log_inputs(self, inputs: Sequence[Any]) -> None:
        with self._timed():
            self.inner.log_inputs(inputs)

    def log_model(self, model: Any, input_example: Any) -> None:
        with self._timed():
            self.inner.log_model(model, input_example)

    def log_file(self, name: str, data: bytes) -> None:
        with self._timed():
            self.inner.log_file(name, data)

    def logged_metric_steps(self, key: str) -> list[int]:
        with self._timed():
            return self.inner.logged_metric_steps(key)
