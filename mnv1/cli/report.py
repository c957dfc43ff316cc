"""``mnv1-report``: rebuild the paper's tables and figures from a sweep, or show its status.

mnv1-report --experiment demo --out reports/demo
mnv1-report --experiment tradeoff16 --sweep <sweep key or parent run id> --out reports/t16
mnv1-report --experiment demo --status
mnv1-report --experiment demo --compare mnv1_a0.5_r160 mnv1_a0.5_r192
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mnv1 import interrupt
from mnv1.cli import VERBOSE_FLAG, VERBOSE_HELP
from mnv1.report.fidelity import SLIM_RELEASES
from mnv1.tracking.uri import adopt_credentials


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnv1-report",
        description="Rebuild MobileNetV1's Tables 2-9 and Figures 4-5 from a sweep's MLflow runs.",
    )
    parser.add_argument("--experiment", required=True, help="MLflow experiment (the study name)")
    parser.add_argument(
        "--sweep",
        default=None,
        help="sweep key or parent run id (default: the experiment's latest sweep)",
    )
    parser.add_argument("--out", default=None, help="directory for the report's files")
    parser.add_argument(
        "--tracking-uri",
        default=None,
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)",
    )
    parser.add_argument(
        "--status",
        action="store_true",
        help="print the α × ρ completion matrix of the sweep and exit; builds no report",
    )
    parser.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        default=None,
        help="print the difference in val_top1 between A and B (cell names such as "
        "mnv1_a0.5_r160, or run ids) with its 95%% interval, and whether it is "
        "distinguishable from noise; builds no report",
    )
    parser.add_argument(
        "--slim-release",
        choices=sorted(SLIM_RELEASES),
        default="2017",
        help="TF-slim checkpoint release whose accuracies are the reference (default 2017)",
    )
    parser.add_argument(
        "--no-log-artifacts",
        action="store_true",
        help="write the files only; do not log them on the sweep's parent run",
    )
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    interrupt.install()
    parser = _parser()
    args = parser.parse_args(argv)
    if args.tracking_uri is not None:
        # A password in the URI goes into the environment: the report prints and records the
        # URI (its "tracking store" line), never with the password.
        args.tracking_uri = adopt_credentials(args.tracking_uri)
    try:
        return _report(parser, args)
    except KeyboardInterrupt as exc:
        interrupt.ignore()
        interrupt.stop(
            "mnv1-report",
            "the report was not finished (the runs are untouched)",
            "Run the same command again",
            interrupt.signum_of(exc),
        )


def _report(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    # MLflow draws a progress bar for every artifact it downloads (here: one small grid.json);
    # on a terminal report that is noise.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Imported after parsing, so --help answers without loading MLflow.
    from mnv1.report.build import build_report, compare_cells, sweep_status
    from mnv1.tracking.sqlite_store import BrokenStoreError

    try:
        if args.status:
            print(sweep_status(args.experiment, args.sweep, args.tracking_uri), end="")
            return 0
        if args.compare:
            a, b = args.compare
            print(compare_cells(args.experiment, a, b, args.sweep, args.tracking_uri), end="")
            return 0
        if args.out is None:
            parser.error("--out is required unless --status is given")
        result = build_report(
            args.experiment,
            args.out,
            sweep=args.sweep,
            uri=args.tracking_uri,
            slim_release=args.slim_release,
            log_artifacts=not args.no_log_artifacts,
        )
    except ValueError as err:
        print(f"mnv1-report: error: {err}", file=sys.stderr)
        return 2
    except BrokenStoreError as err:
        print(f"mnv1-report: error: {err}", file=sys.stderr)
        return 3
    sweep = result.sweep_key or result.parent_run_id
    print(f"report of sweep {sweep} written to {result.out_dir}:")
    for path in result.files:
        print(f"  {path.name}")
    if result.artifacts:
        print(f"logged {len(result.artifacts)} artifacts on parent run {result.parent_run_id}")
    print()
    print(result.tables["fidelity"].to_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
