"""A search's results from its trial runs: trials.csv, trials.png and the best trial.

Read from MLflow (the trial runs under the search's parent), so the same summary comes out
whether trials ran in this process or in distributed workers on other hosts.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnv1.tracking import runs, schema
from mnv1.tracking import tune as tracking
from mnv1.tune.project import OBJECTIVE
from mnv1.tune.space import Space

COMPLETED = "COMPLETED"


@dataclass(frozen=True)
class TrialRow:
    trial_id: str
    status: str
    """KerasTuner's verdict (COMPLETED, FAILED, INVALID), else the run's MLflow status."""
    values: dict[str, Any]
    val_top1: float | None
    minutes: float | None
    run_id: str
    end_time: int | None

    @property
    def completed(self) -> bool:
        return self.status == COMPLETED and self.val_top1 is not None


def trial_rows(uri: str, experiment_id: str, tune_key: str) -> list[TrialRow]:
    rows = []
    for run in tracking.trials_of(uri, experiment_id, tune_key):
        status = run.tags.get(schema.TAG_TRIAL_STATUS) or run.status
        value = run.metrics.get(OBJECTIVE) if run.status == runs.FINISHED else None
        rows.append(
            TrialRow(
                trial_id=run.tags.get(schema.TAG_TRIAL_ID, ""),
                status=status,
                values=tracking.trial_values(run),
                val_top1=value if value is not None and math.isfinite(value) else None,
                minutes=run.minutes,
                run_id=run.run_id,
                end_time=run.end_time,
            )
        )
    return sorted(rows, key=lambda r: (len(r.trial_id), r.trial_id))


def best_row(rows: Sequence[TrialRow]) -> TrialRow | None:
    """The completed trial with the highest val_top1 (the earliest on a tie)."""
    done = [r for r in rows if r.completed]
    return max(done, key=lambda r: (r.val_top1, -rows.index(r))) if done else None


def failures_at_end(rows: Sequence[TrialRow]) -> int:
    """Failed trials in a row among the last to end (what stops a search)."""
    ended = sorted((r for r in rows if r.end_time is not None), key=lambda r: r.end_time or 0)
    count = 0
    for row in reversed(ended):
        if row.status not in ("FAILED", "INVALID", runs.FAILED):
            break
        count += 1
    return count


def trials_csv(rows: Sequence[TrialRow], space: Space) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["trial_id", "status", *space.keys, OBJECTIVE, "minutes", "run_id"])
    for r in rows:
        writer.writerow(
            [
                r.trial_id,
                r.status,
                *(r.values.get(k, "") for k in space.keys),
                "" if r.val_top1 is None else f"{r.val_top1:.6g}",
                "" if r.minutes is None else f"{r.minutes:.3f}",
                r.run_id,
            ]
        )
    return out.getvalue()


def trials_figure(rows: Sequence[TrialRow], space: Space, path: Path) -> Path:
    """One panel per tuned key: the objective against the key's value (log axes where the
    space samples on a log scale); failed trials as crosses at the bottom."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = space.dimensions
    columns = min(3, len(dims))
    lines = math.ceil(len(dims) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(4 * columns, 3.2 * lines), squeeze=False)
    done = [r for r in rows if r.completed]
    failed = [r for r in rows if not r.completed]
    floor = min((r.val_top1 or 0.0 for r in done), default=0.0)
    best = best_row(rows)
    for ax, dim in zip(axes.flat, dims, strict=False):
        numeric = dim.kind in ("float", "int")
        labels = [str(v) for v in dim.values] if dim.kind == "choice" else ["False", "True"]

        def x(row: TrialRow, dim: Any = dim, numeric: bool = numeric, labels: Any = labels) -> Any:
            value = row.values.get(dim.key)
            return value if numeric else labels.index(str(value)) if str(value) in labels else -1

        ax.scatter([x(r) for r in done], [r.val_top1 for r in done], color="tab:blue", zorder=3)
        if failed:
            ax.scatter([x(r) for r in failed], [floor] * len(failed), marker="x", color="tab:red")
        if best is not None:
            ax.scatter([x(best)], [best.val_top1], s=120, facecolors="none", edgecolors="black")
        if numeric and dim.log:
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(dim.key)
        ax.set_ylabel(f"{OBJECTIVE} (held out)")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(dims) :]:
        ax.set_visible(False)
    fig.suptitle(f"{len(done)} completed, {len(failed)} failed trials; circled: the best")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
