"""The paper's Tables 2-9 rebuilt: our numbers beside the printed ones.

Accuracies come from the runs. Mult-adds and params come from the cost model (``mnv1.costs``)
for the architecture each row names, built with the paper's classifier head (1000 classes), so
they compare like with like even when the sweep trained on a dataset with fewer classes; each
run's own counts, for its own head, are in the grid table.
"""

from __future__ import annotations

from collections.abc import Sequence

from mnv1 import paper
from mnv1.report.fidelity import (
    ERRATUM,
    SLIM_RELEASES,
    AnalyticCheck,
    slim_row_or_none,
    slim_top1,
)
from mnv1.report.grid import seeds_text
from mnv1.report.paper_counts import (
    TITLES,
    Costs,
    CostsFn,
    CountedRow,
    check_note,
    model_cell,
    model_row,
    table2_rows,
    table3_rows,
)
from mnv1.report.records import MISSING, CellRecord
from mnv1.report.tables import Column, Table

# Tables 6 and 7 are the α and ρ axes of every sweep; the others show only when run (see below).
ALWAYS_SHOWN: tuple[str, ...] = ("Table 6", "Table 7")
OPTIONAL: tuple[str, ...] = ("Table 4", "Table 5", "Table 8", "Table 9")


def default_costs() -> CostsFn:
    # Imported on use: the cost model builds Keras models, and --status must not load TensorFlow.
    from mnv1.costs import costs_for

    return costs_for


def _cell_of(row: paper.PaperRow) -> tuple[float, int, str] | None:
    cell = model_cell(row)
    return None if cell is None else (cell.alpha, cell.resolution, cell.variant)


def _record_for(row: paper.PaperRow, records: Sequence[CellRecord]) -> CellRecord | None:
    cell = _cell_of(row)
    for r in records:
        if (r.alpha, r.resolution, r.variant) == cell:
            return r
    return None


def _errata_notes(label: str, counted: CountedRow, table: Table) -> str | None:
    """The short cell note (``paper error: 290 → 291``) of a row's excused values; the long form
    (:func:`mnv1.report.paper_counts.check_note`) joins the table's notes."""
    notes = []
    for c in counted.checks:
        if c.erratum is not None and c.verdict == ERRATUM:
            table.notes.append(f"{label}, {check_note(c)}")
            notes.append(f"paper error: {c.erratum.printed} → {c.erratum.correct}")
    return "; ".join(notes) or None


def tables_to_show(records: Sequence[CellRecord]) -> list[str]:
    """Tables 6 and 7, plus each of Tables 4, 5, 8, 9 whose study the grid holds.

    A table's study is the cells only it reports (Table 4's full-convolution model, Table 5's
    shallow one, Table 9's 0.50-160); a table all of whose MobileNet rows appear in Tables 6 or 7
    (Table 8) shows when any of them is in the grid.
    """
    common = {_cell_of(r) for key in ALWAYS_SHOWN for r in paper.TABLES[key]}
    grid = {(r.alpha, r.resolution, r.variant) for r in records}
    shown = list(ALWAYS_SHOWN)
    for key in OPTIONAL:
        cells = {c for r in paper.TABLES[key] if (c := _cell_of(r)) is not None}
        own = cells - common or cells
        if own & grid:
            shown.append(key)
    return sorted(shown, key=lambda k: int(k.split()[1]))


CONVENTIONS = (
    "Top-1 ours is each run's final validation top-1 (— unless the run finished), the mean over "
    "a cell's finished seeds where it has several (sd: their sample standard deviation; Seeds: "
    "finished/asked). Mult-adds and "
    "params ours are the cost model's exact counts of the architecture a row names, at the "
    "paper's 1000-class head, so they compare like with like whatever dataset the sweep trained "
    "on (each run's own counts are in the grid table). Counts: pass when ours, rounded to the "
    "decimals the paper printed, reads the printed value; erratum when the printed value is a "
    "documented error of the paper whose correction is derived from the architecture or the "
    "counting convention, and ours reads the correct value; FAIL otherwise (unexplained)."
)


def comparison_table(
    key: str,
    records: Sequence[CellRecord],
    costs_for: CostsFn,
    release: str = "2017",
) -> tuple[Table, list[AnalyticCheck]]:
    """One of Tables 4-9 (its MobileNet rows) with ours beside the paper's and TF-slim's."""
    rel = SLIM_RELEASES[release]
    table = Table(
        key=key.lower().replace(" ", ""),
        title=f"{key}: {TITLES[key]}",
        columns=(
            Column("Model"),
            Column("Run"),
            Column("Top-1 ours", ".1f"),
            Column("Top-1 ours sd", ".1f"),
            Column("Seeds"),
            Column("Top-1 paper", ".1f"),
            Column("Δ paper", "+.1f"),
            Column(f"Top-1 TF-slim {rel}", ".1f"),
            Column("Δ TF-slim", "+.1f"),
            Column("M Mult-Adds ours", ".2f"),
            Column("M Mult-Adds paper", "g"),
            Column("Δ M Mult-Adds", "+.2f"),
            Column("M Params ours", ".3f"),
            Column("M Params paper", "g"),
            Column("Δ M Params", "+.3f"),
            Column("Counts"),
            Column("Note"),
        ),
    )
    checks: list[AnalyticCheck] = []
    for row in paper.TABLES[key]:
        counted = model_row(key, row, costs_for)
        if counted is None or counted.cell is None:
            continue  # GoogleNet, VGG 16, …: nothing of ours to set beside them
        checks += counted.checks
        ma_check, pa_check = counted.checks
        record = _record_for(row, records)
        ours = None if record is None else record.top1
        cell = counted.cell
        slim = (
            slim_row_or_none(cell.alpha, cell.resolution) if cell.variant == "separable" else None
        )
        ref = None if slim is None else slim_top1(slim, release)
        table.add(
            row.model,
            MISSING if record is None else record.status,
            ours,
            None if record is None else record.top1_sd,
            None if record is None else seeds_text(record),
            row.top1,
            None if ours is None else ours - row.top1,
            ref,
            None if ours is None or ref is None else ours - ref,
            ma_check.ours,
            row.mult_adds_m,
            ma_check.ours - row.mult_adds_m,
            pa_check.ours,
            row.params_m,
            pa_check.ours - row.params_m,
            counted.verdict,
            _errata_notes(row.model, counted, table),
        )
    source = f"Paper: {paper.SOURCES['[P]']}, {key}. TF-slim: {rel} float checkpoints."
    table.notes.insert(0, source)
    return table, checks


def table2(costs_for: CostsFn) -> tuple[Table, list[AnalyticCheck]]:
    """Resource per layer type of 1.0 MobileNet-224, from the cost model, beside the paper's."""
    table = Table(
        key="table2",
        title=f"Table 2: {TITLES['Table 2']}",
        columns=(
            Column("Type"),
            Column("Mult-Adds % ours", ".2f"),
            Column("Mult-Adds % paper", ".2f"),
            Column("Params % ours", ".2f"),
            Column("Params % paper", ".2f"),
            Column("Counts"),
            Column("Note"),
        ),
    )
    checks: list[AnalyticCheck] = []
    for counted in table2_rows(costs_for):
        checks += counted.checks
        ma, pa = counted.checks
        note = _errata_notes(counted.row, counted, table)
        table.add(counted.row, ma.ours, ma.printed, pa.ours, pa.printed, counted.verdict, note)
    table.notes.insert(
        0,
        f"Paper: {paper.TABLE2_SOURCE}. Ours: shares of the exact mult-adds and params "
        "(paper convention: kernel weights only, no biases or BatchNorm) of the built model.",
    )
    return table, checks


def table3(
    rows: Sequence[tuple[str, Costs]],
) -> tuple[Table, list[AnalyticCheck]]:
    """Table 3 (one 14×14×512 layer, modified step by step) from the layers built for it."""
    table = Table(
        key="table3",
        title=f"Table 3: {TITLES['Table 3']}",
        columns=(
            Column("Layer/Modification"),
            Column("M Mult-Adds ours", ".2f"),
            Column("M Mult-Adds paper", "g"),
            Column("M Params ours", ".4f"),
            Column("M Params paper", "g"),
            Column("Counts"),
        ),
    )
    checks: list[AnalyticCheck] = []
    for counted in table3_rows(rows):
        checks += counted.checks
        ma, pa = counted.checks
        table.add(counted.row, ma.ours, ma.printed, pa.ours, pa.printed, counted.verdict)
    table.notes.append(f"Paper: {paper.TABLE3_SOURCE}. Ours: the layers built and counted.")
    return table, checks
