"""The small interface through which a training run reports what it does.

The training loop knows only this protocol. ``tracking.writer.MLflowTracker`` backs it with MLflow
(the only place that imports mlflow); ``MemoryTracker`` keeps everything in lists so tests and
benchmarks can run a real training without any store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class Tracker(Protocol):
    def log_params(self, params: Mapping[str, Any]) -> None:
        """Record configuration values (flat, dotted keys)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record numeric values; ``step`` is the epoch for per-epoch metrics, None for finals."""

    def set_tags(self, tags: Mapping[str, str]) -> None:
        """Record string facts about the run (versions, devices, strategy)."""

    def log_text(self, name: str, text: str) -> None:
        """Attach a text artifact (a cost table, a model summary, a traceback)."""

    def log_model(self, model: Any, input_example: Any) -> None:
        """Attach the trained model. Trackers that cannot store models may ignore it."""

    def logged_metric_steps(self, key: str) -> list[int]:
        """Steps already recorded for ``key`` (how a resumed run avoids duplicating epochs)."""


@dataclass
class MemoryTracker:
    """A Tracker that keeps everything in memory."""

    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, list[tuple[int | None, float]]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    models: list[Any] = field(default_factory=list)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.params.update(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.metrics.setdefault(key, []).append((step, float(value)))

    def set_tags(self, tags: Mapping[str, str]) -> None:
        self.tags.update({k: str(v) for k, v in tags.items()})

    def log_text(self, name: str, text: str) -> None:
        self.texts[name] = text

    def log_model(self, model: Any, input_example: Any) -> None:
        self.models.append(model)

    def logged_metric_steps(self, key: str) -> list[int]:
        return [step for step, _ in self.metrics.get(key, []) if step is not None]

    def last(self, key: str) -> float:
        """The most recent value of a metric (test convenience)."""
        return self.metrics[key][-1][1]
