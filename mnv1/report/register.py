"""``mnv1-report --register``: the best cell of a sweep within a budget becomes a new version of a
registered model, with alias ``champion`` (``mnv1.report.pick`` chooses, ``mnv1.tracking.models``
writes)."""

from __future__ import annotations

from dataclasses import dataclass

from mnv1.report.pick import Budget, Choice, pick, version_tags
from mnv1.tracking import models
from mnv1.tracking.queries import read_sweep


@dataclass(frozen=True)
class Registered:
    choice: Choice
    version: models.RegisteredVersion
    sweep: str


def register_best(
    experiment: str,
    name: str,
    budget: Budget,
    metric: str,
    sweep: str | None = None,
    uri: str | None = None,
) -> Registered:
    """Pick the sweep's best cell within ``budget`` and register its LoggedModel as ``name``.

    ValueError (NothingFits naming the closest cell) before anything is written when no cell
    can be registered.
    """
    found = read_sweep(experiment, sweep, uri)
    key = found.parent.sweep_key or found.parent.run_id
    choice = pick(found.runs, metric, budget, key)
    version = models.register(
        found.tracking_uri, name, choice.winner.run_id, version_tags(choice, key)
    )
    return Registered(choice, version, key)
