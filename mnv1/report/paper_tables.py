"""The paper's Tables 2-9 rebuilt: our numbers beside the printed ones.

Accuracies come from the runs. Mult-adds and params come from the cost model (``mnv1.costs``)
for the architecture each row names, built with the paper's classifier head (1000 classes), so
they compare like with like even when the sweep trained on a dataset with fewer classes; each
run's own counts, for its own head, are in the grid table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from mnv1 import paper
from mnv1.report.fidelity import (
    ERRATUM,
    SLIM_RELEASES,
    AnalyticCheck,
    check_printed,
    slim_row_or_none,
    slim_top1,
    verdict_of,
)
from mnv1.report.grid import seeds_text
from mnv1.report.records import MISSING, CellRecord
from mnv1.report.tables import Column, Table

# Tables 6 and 7 are the α and ρ axes of every sweep; the others show only when run (see below).
ALWAYS_SHOWN: tuple[str, ...] = ("Table 6", "Table 7")
OPTIONAL: tuple[str, ...] = ("Table 4", "Table 5", "Table 8", "Table 9")


class Costs(Protocol):
    """What the report reads of ``mnv1.costs.ModelCosts``."""

    @property
    def mult_adds(self) -> int: ...

    @property
    def params(self) -> int: ...

    def shares(self) -> dict[str, tuple[float, float]]: ...


CostsFn = Callable[..., Costs]
"""``costs_for(alpha, resolution, num_classes=..., variant=...)``, as in ``mnv1.costs``."""


def default_costs() -> CostsFn:
    # Imported on use: the cost model builds Keras models, and --status must not load TensorFlow.
    from mnv1.costs import costs_for

    return costs_for


def _cell_of(row: paper.PaperRow) -> tuple[float, int, str] | None:
    if row.alpha is None or row.resolution is None or row.variant == "other":
        return None
    return (row.alpha, row.resolution, row.variant)


def _record_for(row: paper.PaperRow, records: Sequence[CellRecord]) -> CellRecord | None:
    cell = _cell_of(row)
    for r in records:
        if (r.alpha, r.resolution, r.variant) == cell:
            return r
    return None


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
        cell = _cell_of(row)
        if cell is None:
            continue  # GoogleNet, VGG 16, …: nothing of ours to set beside them
        alpha, resolution, variant = cell
        costs = costs_for(alpha, resolution, num_classes=row.num_classes, variant=variant)
        ma, pa = costs.mult_adds / 1e6, costs.params / 1e6
        row_checks = [
            check_printed(key, f"{row.model} mult-adds", ma, row.mult_adds_m),
            check_printed(key, f"{row.model} params", pa, row.params_m),
        ]
        checks += row_checks
        record = _record_for(row, records)
        ours = None if record is None else record.top1
        slim = slim_row_or_none(alpha, resolution) if variant == "separable" else None
        ref = None if slim is None else slim_top1(slim, release)
        notes = []
        for c in row_checks:
            if c.erratum is not None and c.verdict == ERRATUM:
                table.notes.append(
                    f"{row.model}, {c.item.rsplit(' ', 1)[1]}: the paper prints "
                    f"{c.erratum.printed}, the exact count is {c.ours:.2f} "
                    f"(prints as {c.erratum.correct}). {c.erratum.explanation}"
                )
                notes.append(f"paper error: {c.erratum.printed} → {c.erratum.correct}")
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
            ma,
            row.mult_adds_m,
            ma - row.mult_adds_m,
            pa,
            row.params_m,
            pa - row.params_m,
            verdict_of(row_checks),
            "; ".join(notes) or None,
        )
    source = f"Paper: {paper.SOURCES['[P]']}, {key}. TF-slim: {rel} float checkpoints."
    table.notes.insert(0, source)
    return table, checks


TITLES: dict[str, str] = {
    "Table 4": "Depthwise Separable vs Full Convolution MobileNet",
    "Table 5": "Narrow vs Shallow MobileNet",
    "Table 6": "MobileNet Width Multiplier",
    "Table 7": "MobileNet Resolution",
    "Table 8": "MobileNet Comparison to Popular Models (MobileNet rows)",
    "Table 9": "Smaller MobileNet Comparison to Popular Models (MobileNet rows)",
}


def table2(costs_for: CostsFn) -> tuple[Table, list[AnalyticCheck]]:
    """Resource per layer type of 1.0 MobileNet-224, from the cost model, beside the paper's."""
    shares = costs_for(1.0, 224, num_classes=1000, variant="separable").shares()
    table = Table(
        key="table2",
        title="Table 2: Resource Per Layer Type (1.0 MobileNet-224)",
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
    for kind, (ma_printed, pa_printed) in paper.TABLE2.items():
        ma, pa = shares[kind]
        row_checks = [
            check_printed("Table 2", f"{kind} mult-adds", ma, ma_printed),
            check_printed("Table 2", f"{kind} params", pa, pa_printed),
        ]
        checks += row_checks
        note = None
        for c in row_checks:
            if c.erratum is not None and c.verdict == ERRATUM:
                note = f"paper error: {c.erratum.printed} → {c.erratum.correct}"
                table.notes.append(f"{kind}: {c.erratum.explanation}")
        table.add(kind, ma, ma_printed, pa, pa_printed, verdict_of(row_checks), note)
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
        title="Table 3: Resource usage for modifications to standard convolution",
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
    printed = {label: (ma, pa) for label, ma, pa in paper.TABLE3}
    for label, costs in rows:
        ma_printed, pa_printed = printed[label]
        ma, pa = costs.mult_adds / 1e6, costs.params / 1e6
        row_checks = [
            check_printed("Table 3", f"{label} mult-adds", ma, ma_printed),
            check_printed("Table 3", f"{label} params", pa, pa_printed),
        ]
        checks += row_checks
        table.add(label, ma, ma_printed, pa, pa_printed, verdict_of(row_checks))
    table.notes.append(f"Paper: {paper.TABLE3_SOURCE}. Ours: the layers built and counted.")
    return table, checks
