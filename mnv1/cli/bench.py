"""``mnv1-bench``: speed benchmarks, one subcommand each (``mnv1-bench data --help``).

A new benchmark is a module in ``mnv1.bench`` with ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``, plus one line in ``SUBCOMMANDS``. Every subcommand gets ``--format``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from mnv1.bench import FORMATS

# Subcommand name -> module implementing it.
SUBCOMMANDS: dict[str, str] = {
    "model": "mnv1.bench.model",
    "data": "mnv1.bench.data",
    "train": "mnv1.bench.train",
    "sweep": "mnv1.bench.sweep",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnv1-bench", description="Measure the speed of parts of mnv1 on this machine."
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--format", choices=FORMATS, default="markdown", help="output format (default: markdown)"
    )
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
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    raise SystemExit(main())
