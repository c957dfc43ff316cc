"""``mnv1-bench``: speed benchmarks, one subcommand each (``mnv1-bench data --help``).

A new benchmark is a module in ``mnv1.bench`` with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``, plus one line in ``SUBCOMMANDS``. Every subcommand gets ``--format``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from mnv1 import interrupt
from mnv1.bench import FORMATS, render
from mnv1.cli import VERBOSE_FLAG, VERBOSE_HELP, quiet_tensorflow

# Subcommand name -> module implementing it.
SUBCOMMANDS: dict[str, str] = {
    "model": "mnv1.bench.model",
    "data": "mnv1.bench.data",
    "train": "mnv1.bench.train",
    "sweep": "mnv1.bench.sweep",
    "latency": "mnv1.bench.latency",
    "tracking": "mnv1.bench.tracking",
    "fixed": "mnv1.bench.fixed",
    "spawn": "mnv1.bench.spawn",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnv1-bench", description="Measure the speed of parts of mnv1 on this machine."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--format", choices=FORMATS, default="markdown", help="output format (default: markdown)"
    )
    common.add_argument(
        "--log-to",
        default=None,
        metavar="URI",
        help="also record the result as an MLflow run (tag mnv1.kind=benchmark) in this store",
    )
    common.add_argument(
        "--log-experiment",
        default="benchmarks",
        help="MLflow experiment for --log-to (default: benchmarks)",
    )
    common.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(
            name,
            parents=[common],
            help=module.HELP,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.set_defaults(run=module.run, logs_itself=getattr(module, "LOGS_ITSELF", False))
    return parser


def _metrics(document: dict[str, Any]) -> dict[str, float]:
    """Numeric fields of each result row, keyed by the row's coordinates: ``a1_r224.ratio``."""
    metrics: dict[str, float] = {}
    for i, row in enumerate(document.get("results", [])):
        coords = [f"{k[0]}{row[k]:g}" for k in ("alpha", "resolution") if k in row]
        prefix = "_".join(coords) or f"row{i}"
        for key, value in row.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics[f"{prefix}.{key}"] = float(value)
    return metrics


def _run_and_log(args: argparse.Namespace) -> int:
    """Run a benchmark with JSON output captured, print it as asked, and log it to MLflow."""
    from mnv1.tracking.benchmarks import log_benchmark

    asked, args.format = args.format, "json"
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = int(args.run(args))
    if code != 0:
        sys.stdout.write(captured.getvalue())
        return code
    document = json.loads(captured.getvalue())
    if asked == "json":
        text = captured.getvalue()
    else:
        rows = document["results"]
        scalar = [k for k in rows[0] if not isinstance(rows[0][k], list | dict)] if rows else []
        text = render(document["benchmark"], {k: k for k in scalar}, rows, document["meta"], asked)
    print(text)
    run_id = log_benchmark(
        args.log_to,
        args.log_experiment,
        args.command,
        # MLflow keys allow letters, digits and _-. :/ only ("repeats (A B alternated)").
        {re.sub(r"[^\w\-. :/]", "_", k): str(v) for k, v in document["meta"].items()},
        _metrics(document),
        captured.getvalue(),
    )
    print(f"mnv1-bench {args.command}: logged as run {run_id} in {args.log_to}", file=sys.stderr)
    return 0


@interrupt.guarded("mnv1-bench", "the benchmark was stopped", "Run the same command again")
def main(argv: Sequence[str] | None = None) -> int:
    quiet_tensorflow(argv)  # first: before anything below imports TensorFlow
    args = build_parser().parse_args(argv)
    if args.log_to and not args.logs_itself:
        return _run_and_log(args)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
