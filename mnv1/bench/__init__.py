"""Benchmarks behind ``mnv1-bench``: each subcommand is a module here with ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int`` (registered in ``mnv1.cli.bench``).

Speed is measured here, never asserted in tests. This package only formats results; it imports
no TensorFlow, so ``mnv1-bench --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from typing import Any

from mnv1 import tables

FORMATS: tuple[str, ...] = ("markdown", "json")


def parse_cell(text: str) -> tuple[float, int]:
    """``ALPHA:RESOLUTION`` on a benchmark's command line, e.g. ``0.25:128``."""
    try:
        alpha, resolution = text.split(":")
        return float(alpha), int(resolution)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"cells are ALPHA:RESOLUTION, got {text!r}") from err


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return str(value)


def render(
    title: str, columns: dict[str, str], rows: list[dict[str, Any]], meta: dict[str, Any], fmt: str
) -> str:
    """Rows as a markdown table (``columns``: key → header) or as one JSON document."""
    if fmt == "json":
        return json.dumps({"benchmark": title, "meta": meta, "results": rows}, indent=2)
    if fmt != "markdown":
        raise ValueError(f"--format={fmt!r} is not one of {', '.join(FORMATS)}")
    lines = [f"## {title}", ""]
    lines += [f"- {k}: {v}" for k, v in meta.items()]
    body = [[_cell(row[k]) for k in columns] for row in rows]
    lines += ["", tables.markdown(list(columns.values()), body, [True] * len(columns))]
    return "\n".join(lines)
