"""``mnv1-costs``: mult-adds and parameters of MobileNetV1, beside the paper's printed values.

With no arguments it prints the paper comparison of :mod:`mnv1.report.paper_counts`, the same
one the report's paper tables show: the analytic columns of the paper's Tables 2-7 and the
MobileNet rows of Tables 8 and 9, counted from models it builds, each beside the printed value
with the report's verdict: ``pass`` where ours, rounded to the printed precision, equals it;
``erratum`` where it does not and the printed value is a documented error of the paper (the
explanation comes from :data:`mnv1.paper.ERRATA`); ``FAIL`` otherwise, which also makes the exit
status 1.

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
from typing import TYPE_CHECKING, Any

from mnv1 import interrupt, tables
from mnv1.cli import VERBOSE_FLAG, VERBOSE_HELP, quiet_tensorflow
from mnv1.config import MIN_RESOLUTION
from mnv1.report.fidelity import FAIL
from mnv1.report.paper_counts import TITLES, CountedRow, paper_comparison

if TYPE_CHECKING:
    from mnv1.costs import ModelCosts

FORMATS = ("markdown", "csv", "json")


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


def _comparisons_markdown(comparisons: Sequence[CountedRow]) -> str:
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
            ma, pa = c.checks
            cells: list[Any] = [
                c.row,
                f"{c.mult_adds:,}",
                _fmt(ma.ours, ma.decimals),
                _fmt(ma.printed, ma.decimals),
                f"{c.params:,}",
                _fmt(pa.ours, pa.decimals),
                _fmt(pa.printed, pa.decimals),
            ]
            if table not in ("Table 2", "Table 3"):
                cells.append(f"{c.keras_params:,}")
            cells += [c.verdict, c.note]
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


def _comparison_record(c: CountedRow) -> dict[str, Any]:
    """One flat row: our exact counts, ours and the print in ``unit``, each value's verdict and
    the row's (``status``)."""
    ma, pa = c.checks
    cell = c.cell
    return {
        "table": c.table,
        "row": c.row,
        "unit": c.unit,
        "mult_adds": c.mult_adds,
        "mult_adds_ours": ma.ours,
        "mult_adds_paper": ma.printed,
        "mult_adds_status": ma.verdict,
        "params": c.params,
        "params_ours": pa.ours,
        "params_paper": pa.printed,
        "params_status": pa.verdict,
        "note": c.note,
        "alpha": None if cell is None else cell.alpha,
        "resolution": None if cell is None else cell.resolution,
        "variant": None if cell is None else cell.variant,
        "num_classes": None if cell is None else cell.num_classes,
        "keras_params": c.keras_params,
        "status": c.verdict,
    }


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
    quiet_tensorflow(argv)  # first: before anything below imports TensorFlow
    parser = _parser()
    args = parser.parse_args(argv)
    # Imported here, after the arguments: the cost model builds Keras models (TensorFlow), and
    # --help or a malformed argument needs none of it.
    from mnv1.costs import costs_for, table3_costs

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
        _write(_model_text(args.format, costs, alpha, resolution, variant, num_classes))
        return 0

    comparisons = paper_comparison(costs_for, table3_costs())
    if args.format == "json":
        models: dict[tuple[float, int, str, int], dict[str, Any]] = {}
        for c in comparisons:
            if c.cell is not None and c.cell not in models:
                costs = costs_for(*c.cell[:2], c.cell.num_classes, c.cell.variant)
                models[c.cell] = _model_record(costs, *c.cell)
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
    _write(text)
    return 1 if any(c.verdict == FAIL for c in comparisons) else 0


def _model_text(
    output: str, costs: ModelCosts, alpha: float, resolution: int, variant: str, num_classes: int
) -> str:
    """One model's per-layer table in ``output`` format."""
    record = _model_record(costs, alpha, resolution, variant, num_classes)
    if output == "json":
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
        return json.dumps({"models": [record]}, indent=2, ensure_ascii=False)
    if output == "csv":
        return _csv(_layer_records(costs))
    return _layers_markdown(costs, record)


def _write(text: str) -> None:
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


if __name__ == "__main__":
    sys.exit(main())
