"""Our exact counts beside the paper's printed ones: the one comparison of Tables 2-9.

Every mult-adds, params or share value the paper prints for a model this project builds is set
beside our count of the same thing and judged by :func:`mnv1.report.fidelity.check_printed`
(``pass``, ``erratum`` or ``FAIL``). ``mnv1-costs`` prints these rows as they are; the report's
paper tables (``mnv1.report.paper_tables``) add the runs' accuracies to them. Both read the one
set of titles below, so the two never disagree on a table's name or a row's verdict.

The counts come from a ``costs_for`` function (``mnv1.costs.costs_for`` in use) passed in, so this
module does not import Keras itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from mnv1 import paper
from mnv1.report.fidelity import ERRATUM, PASS, AnalyticCheck, check_printed, verdict_of

# The paper's table titles (capitalised as printed); Tables 8 and 9 also list models of other
# families (GoogleNet, VGG 16, …) that this project does not build.
TITLES: dict[str, str] = {
    "Table 2": "Resource Per Layer Type (1.0 MobileNet-224)",
    "Table 3": "Resource usage for modifications to standard convolution (one 14x14x512 layer)",
    "Table 4": "Depthwise Separable vs Full Convolution MobileNet",
    "Table 5": "Narrow vs Shallow MobileNet",
    "Table 6": "MobileNet Width Multiplier",
    "Table 7": "MobileNet Resolution",
    "Table 8": "MobileNet Comparison to Popular Models (MobileNet rows)",
    "Table 9": "Smaller MobileNet Comparison to Popular Models (MobileNet rows)",
}
MODEL_TABLES: tuple[str, ...] = tuple(t for t in TITLES if t in paper.TABLES)
"""Tables 4-9: one row a model (Tables 2 and 3 are layer types and one layer)."""


class Costs(Protocol):
    """What the comparison reads of ``mnv1.costs.ModelCosts``."""

    @property
    def mult_adds(self) -> int: ...

    @property
    def params(self) -> int: ...

    @property
    def keras_params(self) -> int: ...

    def by_type(self) -> dict[str, tuple[int, int]]: ...

    def shares(self) -> dict[str, tuple[float, float]]: ...


CostsFn = Callable[..., Costs]
"""``costs_for(alpha, resolution, num_classes=..., variant=...)``, as in ``mnv1.costs``."""


class ModelCell(NamedTuple):
    """The coordinates of a model a printed row names."""

    alpha: float
    resolution: int
    variant: str
    num_classes: int


def model_cell(row: paper.PaperRow) -> ModelCell | None:
    """The model a row of Tables 4-9 names, or None where it is not one we build (GoogleNet,
    VGG 16, … have variant ``other`` and no α or ρ)."""
    if row.alpha is None or row.resolution is None or row.variant == "other":
        return None
    return ModelCell(row.alpha, row.resolution, row.variant, row.num_classes)


@dataclass(frozen=True)
class CountedRow:
    """One printed row of the paper beside our exact count of the same thing."""

    table: str
    row: str
    """The row label as printed."""
    unit: str
    """``M`` (millions) or ``%`` (Table 2's shares): the unit of ``checks``' values."""
    mult_adds: int
    """Our exact count (Table 2: the mult-adds of that layer type)."""
    params: int
    """Our exact count, paper convention: kernel weights only, no biases or BatchNorm."""
    mult_adds_check: AnalyticCheck
    params_check: AnalyticCheck
    cell: ModelCell | None = None
    """The model counted (Tables 4-9); None for Table 2's layer types and Table 3's layers."""
    keras_params: int | None = None
    """``model.count_params()`` of that model (Tables 4-9)."""

    @property
    def checks(self) -> tuple[AnalyticCheck, AnalyticCheck]:
        return (self.mult_adds_check, self.params_check)

    @property
    def verdict(self) -> str:
        """The row's one word: FAIL if either value failed, else erratum if one was excused."""
        return verdict_of(self.checks)

    @property
    def note(self) -> str:
        """Every check of the row that did not pass, in words (empty when both passed)."""
        return " ".join(n for n in (check_note(c) for c in self.checks) if n)


def quantity(check: AnalyticCheck) -> str:
    """``mult-adds`` or ``params``: the column an item names after its row label."""
    return check.item.rsplit(" ", 1)[1]


def check_note(check: AnalyticCheck) -> str | None:
    """One check that did not pass, in words: the erratum and its derivation, or what differs.

    None for a check that passed."""
    if check.verdict == PASS:
        return None
    erratum = check.erratum
    if check.verdict == ERRATUM and erratum is not None:
        return (
            f"{quantity(check)}: the paper prints {erratum.printed}, ours is {check.ours:.2f} "
            f"(prints as {erratum.correct}). {erratum.explanation}"
        )
    return f"{quantity(check)}: ours {check.ours:.2f} vs printed {check.printed:g}, unexplained"


def _counted(
    table: str,
    row: str,
    unit: str,
    counts: tuple[int, int],
    ours: tuple[float, float],
    printed: tuple[float, float],
    cell: ModelCell | None = None,
    keras_params: int | None = None,
) -> CountedRow:
    return CountedRow(
        table=table,
        row=row,
        unit=unit,
        mult_adds=counts[0],
        params=counts[1],
        mult_adds_check=check_printed(table, f"{row} mult-adds", ours[0], printed[0]),
        params_check=check_printed(table, f"{row} params", ours[1], printed[1]),
        cell=cell,
        keras_params=keras_params,
    )


def table2_rows(costs_for: CostsFn) -> list[CountedRow]:
    """Table 2: each layer type's share of 1.0 MobileNet-224's mult-adds and params."""
    reference = costs_for(1.0, 224, num_classes=1000, variant="separable")
    by_type = reference.by_type()
    shares = reference.shares()
    return [
        _counted("Table 2", kind, "%", by_type[kind], shares[kind], printed)
        for kind, printed in paper.TABLE2.items()
    ]


def table3_rows(layers: Sequence[tuple[str, Costs]]) -> list[CountedRow]:
    """Table 3 from the layers built for it (``mnv1.costs.table3_costs``), by row label."""
    printed = {label: (ma, pa) for label, ma, pa in paper.TABLE3}
    return [
        _counted(
            "Table 3",
            label,
            "M",
            (costs.mult_adds, costs.params),
            (costs.mult_adds / 1e6, costs.params / 1e6),
            printed[label],
        )
        for label, costs in layers
    ]


def model_row(table: str, row: paper.PaperRow, costs_for: CostsFn) -> CountedRow | None:
    """One row of Tables 4-9 counted, or None where the row names no model we build."""
    cell = model_cell(row)
    if cell is None:
        return None
    costs = costs_for(
        cell.alpha, cell.resolution, num_classes=cell.num_classes, variant=cell.variant
    )
    return _counted(
        table,
        row.model,
        "M",
        (costs.mult_adds, costs.params),
        (costs.mult_adds / 1e6, costs.params / 1e6),
        (row.mult_adds_m, row.params_m),
        cell,
        costs.keras_params,
    )


def model_rows(table: str, costs_for: CostsFn) -> list[CountedRow]:
    """The rows of one of Tables 4-9 that name a model we build, counted."""
    return [
        counted
        for row in paper.TABLES[table]
        if (counted := model_row(table, row, costs_for)) is not None
    ]


def paper_comparison(
    costs_for: CostsFn, table3_layers: Sequence[tuple[str, Costs]]
) -> list[CountedRow]:
    """Every analytic cell of Tables 2-9 that concerns a model we build, in the paper's order."""
    rows = table2_rows(costs_for) + table3_rows(table3_layers)
    for table in MODEL_TABLES:
        rows += model_rows(table, costs_for)
    return rows
