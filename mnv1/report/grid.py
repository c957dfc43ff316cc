"""The sweep's own results: one row per cell, and α × ρ matrices of top-1 and of run status."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mnv1.report.records import FINISHED, CellRecord, status_counts
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
            r.top5,
            None if r.mult_adds is None else r.mult_adds / 1e6,
            None if r.params is None else r.params / 1e6,
            r.images_per_sec,
            r.run_id,
        )
    counts = status_counts(records)
    table.notes.append(
        "Status counts: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) + ". "
        "Top-1, top-5 and images/s are shown for finished runs only; mult-adds and params "
        "are each run's own (its dataset's classifier head, paper convention). Recipe: tuned "
        "where the run trained with its cell's overrides from mnv1-tune (tuned=...)."
    )
    return table


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
    def value(r: CellRecord) -> str:
        if r.status == FINISHED and r.top1 is not None:
            return f"{r.top1:.2f}"
        return f"{DASH} ({r.status})"

    table = _matrix(records, "grid_top1", "α × ρ grid: validation top-1 (%)", value)
    table.notes.append("— (status): the cell has no final top-1; an empty — is not in the grid.")
    return table


def status_matrix(records: Sequence[CellRecord]) -> Table:
    return _matrix(records, "status", "α × ρ completion", lambda r: r.status)
