"""A table as typed values plus one format per column, rendered (by ``mnv1.tables``) as Markdown,
CSV or plain text.

Values stay numbers until rendering: the CSV keeps full precision (an empty field where a value
is missing, which spreadsheets and pandas read as missing), while Markdown, HTML and the terminal
show the formatted value, or "—" where there is none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from mnv1 import tables

DASH = "—"

Value = float | int | str | None


@dataclass(frozen=True)
class Column:
    header: str
    spec: str = ""
    """Format spec for numbers (``".1f"``, ``"+.2f"``, ``",d"``); strings print as they are."""

    def render(self, value: Value) -> str:
        if value is None:
            return DASH
        if isinstance(value, str):
            return value
        return format(value, self.spec)

    @property
    def numeric(self) -> bool:
        return bool(self.spec)


@dataclass
class Table:
    key: str
    """File stem of the table's CSV (``table6`` → ``table6.csv``)."""
    title: str
    columns: Sequence[Column]
    rows: list[tuple[Value, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Sentences printed under the table (sources, errata, conventions)."""

    def __post_init__(self) -> None:
        for row in self.rows:
            self._check(row)

    def _check(self, row: tuple[Value, ...]) -> None:
        if len(row) != len(self.columns):
            raise ValueError(
                f"table {self.key!r} has {len(self.columns)} columns, got a row of {len(row)}: "
                f"{row!r}"
            )

    def add(self, *row: Value) -> None:
        self._check(row)
        self.rows.append(row)

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def formatted(self) -> list[list[str]]:
        """Every cell as it is shown, "—" for a missing value."""
        return [[c.render(v) for c, v in zip(self.columns, row, strict=True)] for row in self.rows]

    def cell(self, row: int, header: str) -> str:
        """One shown cell by row index and column header (how tests and users pick a value)."""
        return self.formatted()[row][self.headers.index(header)]

    @property
    def numeric(self) -> list[bool]:
        return [c.numeric for c in self.columns]

    def to_markdown(self) -> str:
        return tables.markdown(self.headers, self.formatted(), self.numeric) + "\n"

    def to_csv(self) -> str:
        return tables.csv_text(self.headers, self.rows)

    def to_text(self) -> str:
        """Aligned columns for a terminal."""
        return tables.text(self.headers, self.formatted(), self.numeric)
