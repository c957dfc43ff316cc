"""The one renderer of tables: Markdown, CSV and aligned plain text from headers and rows of shown
cells. The paper report (``mnv1.report.tables``), ``mnv1-costs``, ``mnv1-bench``, the GPU script
and the sweep's status matrix all render through here, so every table reads the same.

Cells arrive as the strings (or numbers) to show; formatting a value is the caller's business,
rendering it is this module's. Pure Python: importing it starts no TensorFlow.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

Row = Sequence[Any]


def _right(numeric: Sequence[bool] | None, width: int) -> list[bool]:
    """Which columns align right; none unless told."""
    if numeric is None:
        return [False] * width
    if len(numeric) != width:
        raise ValueError(f"{width} columns but {len(numeric)} alignment flags")
    return list(numeric)


def markdown(
    headers: Sequence[str], rows: Sequence[Row], numeric: Sequence[bool] | None = None
) -> str:
    """A Markdown (GitHub) table, one line per row and no trailing newline; ``numeric`` columns
    align right. A ``|`` inside a cell is escaped so it cannot split the cell."""

    def line(cells: Row) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    rule = "|" + "|".join("---:" if r else "---" for r in _right(numeric, len(headers))) + "|"
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def csv_text(headers: Sequence[str], rows: Sequence[Row]) -> str:
    """CSV with a header line, ``\\n`` line ends, and an empty field for a missing (None) value
    (what spreadsheets and pandas read as missing)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def text(headers: Sequence[str], rows: Sequence[Row], numeric: Sequence[bool] | None = None) -> str:
    """Columns aligned for a terminal (``numeric`` ones to the right), two spaces apart, ending
    with a newline."""
    cells = [[str(c) for c in headers], *([str(c) for c in row] for row in rows)]
    right = _right(numeric, len(headers))
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        "  ".join(
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(row, widths, right, strict=True)
        ).rstrip()
        for row in cells
    ]
    return "\n".join(lines) + "\n"
