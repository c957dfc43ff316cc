"""``mnv1-costs``: mult-adds and parameters of MobileNetV1, beside the paper's printed values.

With no arguments it rebuilds the analytic columns of the paper's Tables 2-7 and the MobileNet
rows of Tables 8 and 9 from models it builds and counts, and sets each beside the printed value:
``match`` where ours, rounded to the printed precision, equals it; ``erratum`` where it does not
and the paper is known to be wrong (the explanation comes from :data:`mnv1.paper.ERRATA`);
``MISMATCH`` otherwise, which also makes the exit status 1.

With any of ``--alpha``, ``--resolution``, ``--variant`` or ``--num-classes`` it prints the
per-layer table of that one model instead (the rest default to 1.0 MobileNet-224, 1000 classes).

``--format json`` prints ``{"models": [...], ...}`` with one object per model counted, each with
``alpha``, ``resolution``, ``variant``, ``num_classes``, ``mult_adds``, ``params`` (paper
convention) and ``keras_params`` as exact integers; the comparison mode adds ``"tables"``, the
per-layer mode adds ``"layers"`` and ``"shares"`` to its model. ``--format csv`` prints one flat
table: the comparison rows, or the layer rows (no total row, so columns sum to the totals).

Examples::

    mnv1-costs                                   # Tables 2-9 against the paper
    mnv1-costs --alpha 0.75 --resolution 160     # per-layer table of one model
    mnv1-costs --variant shallow --format csv
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mnv1 import interrupt, paper, tables
from mnv1.cli import VERBOSE_FLAG, VERBOSE_HELP
from mnv1.config import MIN_RESOLUTION
from mnv1.costs import ModelCosts, costs_for, table3_costs
from mnv1.report import fidelity

FORMATS = ("markdown", "csv", "json")
MATCH, ERRATUM, MISMATCH = "match", "erratum", "MISMATCH"

TITLES: dict[str, str] = {
    "Table 2": "Resource per layer type (1.0 MobileNet-224)",
    "Table 3": "Resource usage for modifications to standard convolution (14x14x512 layer)",
    "Table 4": "Depthwise separable vs full convolution MobileNet",
    "Table 5": "Narrow vs shallow MobileNet",
    "Table 6": "MobileNet width multiplier",
    "Table 7": "MobileNet resolution",
    "Table 8": "MobileNet comparison to popular models (MobileNet rows)",
    "Table 9": "Smaller MobileNet comparison to popular models (MobileNet rows)",
}


@dataclass(frozen=True)
class Comparison:
    """One printed row of the paper beside our count of the same thing."""

    table: str
    row: str
    """The row label as printed."""
    unit: str
    """``M`` (millions) or ``%`` (Table 2's shares)."""
    mult_adds: int
    """Our exact count (for Table 2: the mult-adds of that layer type)."""
    mult_adds_ours: float
    """Our value in ``unit``."""
    mult_adds_paper: float
    mult_adds_status: str
    params: int
    params_ours: float
    params_paper: float
    params_status: str
    note: str
    alpha: float | None = None
    resolution: int | None = None
    variant: str | None = None
    num_classes: int | None = None
    keras_params: int | None = None

    @property
    def status(self) -> str:
        statuses = {self.mult_adds_status, self.params_status}
        return next(s for s in (MISMATCH, ERRATUM, MATCH) if s in statuses)


def _judge(table: str, row: str, quantity: str, ours: float, printed: float) -> tuple[str, str]:
    """(status, note) for one cell, by the report's rule (:func:`fidelity.check_printed`): ours
    rounded half-up to the printed precision against the print; a known erratum excuses a
    difference only where ours reads the corrected value."""
    check = fidelity.check_printed(table, f"{row} {quantity}", ours, printed)
    if check.verdict == fidelity.PASS:
        return MATCH, ""
    erratum = check.erratum
    if check.verdict == fidelity.FAIL or erratum is None:
        return MISMATCH, f"{quantity}: ours {ours:.2f} vs printed {printed:g}, unexplained"
    return ERRATUM, (
        f"{quantity}: the paper prints {erratum.printed}, the count gives {erratum.correct}. "
        f"{erratum.explanation}"
    )


def _compare(
    table: str,
    row: str,
    unit: str,
    counts: tuple[int, int],
    ours: tuple[float, float],
    printed: tuple[float, float],
    costs: ModelCosts | None = None,
    coordinates: tuple[float, int, str, int] | None = None,
) -> Comparison:
    mult_status, mult_note = _judge(table, row, "mult-adds", ours[0], printed[0])
    params_status, params_note = _judge(table, row, "params", ours[1], printed[1])
    alpha, resolution, variant, num_classes = coordinates or (None, None, None, None)
    return Comparison(
        table=table,
        row=row,
        unit=unit,
        mult_adds=counts[0],
        mult_adds_ours=ours[0],
        mult_adds_paper=printed[0],
        mult_adds_status=mult_status,
        params=counts[1],
        params_ours=ours[1],
        params_paper=printed[1],
        params_status=params_status,
        note=" ".join(n for n in (mult_note, params_note) if n),
        alpha=alpha,
        resolution=resolution,
        variant=variant,
        num_classes=num_classes,
        keras_params=costs.keras_params if costs else None,
    )


def _model_rows(table: str) -> list[Comparison]:
    comparisons = []
    for row in paper.TABLES[table]:
        # GoogleNet, VGG 16 … (variant "other", no α or ρ) are not models this project builds.
        if row.alpha is None or row.resolution is None or row.variant == "other":
            continue
        costs = costs_for(row.alpha, row.resolution, row.num_classes, row.variant)
        comparisons.append(
            _compare(
                table,
                row.model,
                "M",
                (costs.mult_adds, costs.params),
                (costs.mult_adds / 1e6, costs.params / 1e6),
                (row.mult_adds_m, row.params_m),
                costs,
                (row.alpha, row.resolution, row.variant, row.num_classes),
            )
        )
    return comparisons


def paper_comparisons() -> list[Comparison]:
    """Every analytic cell of Tables 2-9 that concerns a model we build, ours beside printed."""
    reference = costs_for(1.0, 224)
    by_type = reference.by_type()
    shares = reference.shares()
    comparisons = [
        _compare("Table 2", kind, "%", by_type[kind], shares[kind], printed)
        for kind, printed in paper.TABLE2.items()
    ]
    for (label, costs), (_, mult_adds_m, params_m) in zip(
        table3_costs(), paper.TABLE3, strict=True
    ):
        comparisons.append(
            _compare(
                "Table 3",
                label,
                "M",
                (costs.mult_adds, costs.params),
                (costs.mult_adds / 1e6, costs.params / 1e6),
                (mult_adds_m, params_m),
            )
        )
    for table in ("Table 4", "Table 5", "Table 6", "Table 7", "Table 8", "Table 9"):
        comparisons.extend(_model_rows(table))
    return comparisons


def _model_record(
    costs: ModelCosts, alpha: float, resolution: int, variant: str, num_classes: int
) -> dict[str, Any]:
    return {
        "name": costs.name,
        "alpha": alpha,
        "resolution": resolution,
        "variant": variant,
        "num_classes": num_classes,
        "mult_adds": costs.mult_adds,
        "params": costs.params,
        "keras_params": costs.keras_params,
    }


# --- rendering ------------------------------------------------------------------------------


def _fmt(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def _comparisons_markdown(comparisons: Sequence[Comparison]) -> str:
    parts = [
        "# MobileNetV1 costs: ours (counted from the built models) beside the paper's print",
        "",
        "Paper convention: conv, depthwise and FC weights; no biases, no BatchNorm. Ours is "
        "rounded to the precision the paper prints; `erratum` marks a known error in the paper.",
    ]
    for table, title in TITLES.items():
        rows = [c for c in comparisons if c.table == table]
        unit = rows[0].unit
        first = {"Table 2": "Type", "Table 3": "Layer/Modification"}.get(table, "Model")
        header = [
            first,
            "Mult-Adds (exact)",
            f"ours ({unit})",
            f"paper ({unit})",
            "Params (exact)",
            f"ours ({unit})",
            f"paper ({unit})",
        ]
        if table not in ("Table 2", "Table 3"):
            header.append("Keras params")
        header += ["Check", "Note"]
        body = []
        for c in rows:
            mult_decimals = paper.printed_decimals(c.mult_adds_paper)
            params_decimals = paper.printed_decimals(c.params_paper)
            cells: list[Any] = [
                c.row,
                f"{c.mult_adds:,}",
                _fmt(c.mult_adds_ours, mult_decimals),
                _fmt(c.mult_adds_paper, mult_decimals),
                f"{c.params:,}",
                _fmt(c.params_ours, params_decimals),
                _fmt(c.params_paper, params_decimals),
            ]
            if table not in ("Table 2", "Table 3"):
                cells.append(f"{c.keras_params:,}")
            cells += [c.status, c.note]
            body.append(cells)
        parts += ["", f"## {table}: {title}", "", tables.markdown(header, body)]
    return "\n".join(parts) + "\n"


def _layers_markdown(costs: ModelCosts, record: dict[str, Any]) -> str:
    def shape(s: tuple[int | None, ...]) -> str:
        return "x".join(str(d) for d in s)

    rows = [
        [
            layer.name,
            layer.type,
            shape(layer.input_shape),
            shape(layer.output_shape),
            f"{layer.params:,}",
            f"{layer.keras_params:,}",
            f"{layer.mult_adds:,}",
        ]
        for layer in costs.layers
    ]
    rows.append(
        [
            "**total**",
            "",
            "",
            "",
            f"**{costs.params:,}**",
            f"**{costs.keras_params:,}**",
            f"**{costs.mult_adds:,}**",
        ]
    )
    header = ["Layer", "Type", "Input", "Output", "Params (paper)", "Params (Keras)", "Mult-Adds"]
    by_type = costs.by_type()
    share_rows = [
        [kind, f"{by_type[kind][0]:,}", f"{m:.2f}%", f"{by_type[kind][1]:,}", f"{p:.2f}%"]
        for kind, (m, p) in costs.shares().items()
    ]
    coordinates = ", ".join(
        f"{key}={record[key]}" for key in ("alpha", "resolution", "variant", "num_classes")
    )
    return (
        "\n".join(
            [
                f"# {costs.name} ({coordinates})",
                "",
                f"{costs.mult_adds:,} mult-adds ({costs.mult_adds / 1e6:.2f}M); "
                f"{costs.params:,} params, paper convention ({costs.params / 1e6:.3f}M); "
                f"{costs.keras_params:,} params, Keras convention.",
                "",
                tables.markdown(header, rows),
                "",
                "## Per layer type (the paper's Table 2)",
                "",
                tables.markdown(
                    ["Type", "Mult-Adds", "share", "Params (paper)", "share"], share_rows
                ),
            ]
        )
        + "\n"
    )


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    return tables.csv_text(list(rows[0]), [list(row.values()) for row in rows])


def _layer_records(costs: ModelCosts) -> list[dict[str, Any]]:
    return [
        {
            "name": layer.name,
            "type": layer.type,
            "input_shape": "x".join(str(d) for d in layer.input_shape),
            "output_shape": "x".join(str(d) for d in layer.output_shape),
            "params": layer.params,
            "keras_params": layer.keras_params,
            "mult_adds": layer.mult_adds,
        }
        for layer in costs.layers
    ]


def _comparison_record(c: Comparison) -> dict[str, Any]:
    return {**asdict(c), "status": c.status}


# --- entry point ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnv1-costs",
        description=(
            "Mult-adds and parameters of MobileNetV1 counted from the built Keras model. With no "
            "model argument: the paper's Tables 2-9 beside ours. With one: that model's "
            "per-layer table."
        ),
    )
    parser.add_argument("--alpha", type=float, help="width multiplier α >= 1/32 (default 1.0)")
    parser.add_argument(
        "--resolution",
        type=int,
        help=f"input size in pixels, an integer >= {MIN_RESOLUTION} (default 224)",
    )
    parser.add_argument(
        "--variant", help="separable (default), full_conv (Table 4) or shallow (Table 5)"
    )
    parser.add_argument(
        "--num-classes", type=int, dest="num_classes", help="classifier size >= 2 (default 1000)"
    )
    parser.add_argument("--format", choices=FORMATS, default="markdown", help="output format")
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    return parser


@interrupt.guarded("mnv1-costs", "nothing was written", "Run the same command again")
def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    model_arguments = (args.alpha, args.resolution, args.variant, args.num_classes)
    if any(value is not None for value in model_arguments):
        alpha = 1.0 if args.alpha is None else args.alpha
        resolution = 224 if args.resolution is None else args.resolution
        variant = args.variant or "separable"
        num_classes = 1000 if args.num_classes is None else args.num_classes
        try:
            costs = costs_for(alpha, resolution, num_classes, variant)
        except ValueError as error:
            parser.error(str(error))  # exits with status 2
        record = _model_record(costs, alpha, resolution, variant, num_classes)
        if args.format == "json":
            by_type = costs.by_type()
            record["shares"] = {
                kind: {
                    "mult_adds": by_type[kind][0],
                    "params": by_type[kind][1],
                    "mult_adds_percent": m,
                    "params_percent": p,
                }
                for kind, (m, p) in costs.shares().items()
            }
            record["layers"] = _layer_records(costs)
            text = json.dumps({"models": [record]}, indent=2, ensure_ascii=False)
        elif args.format == "csv":
            text = _csv(_layer_records(costs))
        else:
            text = _layers_markdown(costs, record)
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return 0

    comparisons = paper_comparisons()
    if args.format == "json":
        models: dict[tuple[float, int, str, int], dict[str, Any]] = {}
        for c in comparisons:
            if c.alpha is None or c.resolution is None or c.variant is None or not c.num_classes:
                continue  # Tables 2 and 3 are shares and single layers, not models
            key = (c.alpha, c.resolution, c.variant, c.num_classes)
            if key not in models:
                costs = costs_for(*key[:2], c.num_classes, c.variant)
                models[key] = _model_record(costs, *key)
        tables = [
            {
                "table": table,
                "title": title,
                "rows": [_comparison_record(c) for c in comparisons if c.table == table],
            }
            for table, title in TITLES.items()
        ]
        text = json.dumps(
            {"models": list(models.values()), "tables": tables}, indent=2, ensure_ascii=False
        )
    elif args.format == "csv":
        text = _csv([_comparison_record(c) for c in comparisons])
    else:
        text = _comparisons_markdown(comparisons)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 1 if any(c.status == MISMATCH for c in comparisons) else 0


if __name__ == "__main__":
    sys.exit(main())
