"""The sweep's own results: one row per cell, one per run, and α × ρ matrices of top-1 and status.

A cell swept over seeds shows ``mean ± sd`` of its finished seeds (sample standard deviation)
and how many finished; its runs, one per seed, are listed in the runs table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mnv1.report.records import CellRecord, status_counts
from mnv1.report.tables import DASH, Column, Table, Value


def alpha_text(alpha: float) -> str:
    """α as the paper and the run names print it: ``1.0``, ``0.75``, ``0.5``."""
    return f"{alpha:.1f}" if float(alpha).is_integer() else f"{alpha:g}"


def grid_table(records: Sequence[CellRecord]) -> Table:
    table = Table(
        key="grid",
        title="α × ρ grid: every cell of the sweep",
        columns=(
            Column("Cell"),
            Column("α", "s"),
            Column("ρ", "d"),
            Column("Variant"),
            Column("Recipe"),
            Column("Status"),
            Column("Top-1 %", ".2f"),
            Column("Top-1 sd", ".2f"),
            Column("Seeds"),
            Column("Top-5 %", ".2f"),
            Column("M Mult-Adds", ".2f"),
            Column("M Params", ".3f"),
            Column("Train images/s", ".1f"),
            Column("Run"),
        ),
    )
    for r in records:
        table.add(
            r.name,
            alpha_text(r.alpha),
            r.resolution,
            r.variant,
            "tuned" if r.tuned else "default",
            r.status,
            r.top1,
            r.top1_sd,
            seeds_text(r),
            r.top5,
            None if r.mult_adds is None else r.mult_adds / 1e6,
            None if r.params is None else r.params / 1e6,
            r.images_per_sec,
            r.run_id if r.seeds == 1 else f"{r.seeds} runs",
        )
    counts = status_counts(records)
    table.notes.append(
        "Status counts: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ". "
        "Top-1, top-5 and images/s are shown for finished runs only, as the mean over a cell's "
        "finished seeds (Top-1 sd: their sample standard deviation; Seeds: finished/asked); "
        "mult-adds and params are each run's own (its dataset's classifier head, paper "
        "convention). Recipe: tuned "
        "where the run trained with its cell's overrides from mnv1-tune (tuned=...)."
    )
    return table


def seeds_text(r: CellRecord) -> str:
    """``finished/asked`` seeds of a cell, e.g. ``3/3``."""
    return f"{len(r.top1_values)}/{r.seeds}"


def runs_table(records: Sequence[CellRecord]) -> Table:
    """Every run of the sweep, one row per cell and seed."""
    table = Table(
        key="grid_runs",
        title="Runs: one per cell and seed",
        columns=(
            Column("Cell"),
            Column("Seed"),
            Column("Status"),
            Column("Top-1 %", ".2f"),
            Column("Top-5 %", ".2f"),
            Column("Run"),
        ),
    )
    for cell in records:
        for r in cell.runs or (cell,):
            table.add(
                cell.name,
                None if r.seed is None else str(r.seed),
                r.status,
                r.top1,
                r.top5,
                r.run_id,
            )
    return table


def top1_text(r: CellRecord) -> str:
    """A cell's top-1 as the matrix shows it: ``mean ± sd`` with several finished seeds."""
    values = r.top1_values
    if not values or r.top1 is None:
        return f"{DASH} ({r.status})"
    text = f"{r.top1:.2f}" if r.top1_sd is None else f"{r.top1:.2f} ± {r.top1_sd:.2f}"
    if r.seeds > 1 and len(values) < r.seeds:
        text += f" ({len(values)}/{r.seeds} seeds)"
    return text


def _row_label(alpha: float, variant: str) -> str:
    return alpha_text(alpha) if variant == "separable" else f"{alpha_text(alpha)} {variant}"


def _matrix(
    records: Sequence[CellRecord], key: str, title: str, value: Callable[[CellRecord], Value]
) -> Table:
    """Rows α (with the variant when not separable), columns ρ, both descending as in the paper."""
    rows = sorted(
        {(r.variant, r.alpha) for r in records},
        key=lambda va: (va[0] != "separable", va[0], -va[1]),
    )
    resolutions = sorted({r.resolution for r in records}, reverse=True)
    by_cell = {(r.variant, r.alpha, r.resolution): r for r in records}
    table = Table(
        key=key,
        title=title,
        columns=(Column("α \\ ρ"), *(Column(str(res), "s") for res in resolutions)),
    )
    for variant, alpha in rows:
        cells = [by_cell.get((variant, alpha, res)) for res in resolutions]
        table.add(_row_label(alpha, variant), *(None if c is None else value(c) for c in cells))
    return table


def top1_matrix(records: Sequence[CellRecord]) -> Table:
    seeds = max((r.seeds for r in records), default=1)
    title = "α × ρ grid: validation top-1 (%)" + (
        ", mean ± sd over seeds" if seeds > 1 else ", one seed per cell"
    )
    table = _matrix(records, "grid_top1", title, top1_text)
    table.notes.append("— (status): the cell has no final top-1; an empty — is not in the grid.")
    if seeds > 1:
        table.notes.append(
            "mean ± sd: mean and sample standard deviation of the finished seeds' top-1; "
            "(k/n seeds) where only k of a cell's n seeds finished."
        )
    return table


def status_matrix(records: Sequence[CellRecord]) -> Table:
    return _matrix(records, "status", "α × ρ completion", lambda r: r.status)
