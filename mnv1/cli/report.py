"""``mnv1-report``: rebuild the paper's tables and figures from a sweep, or show its status.

mnv1-report --experiment demo --out reports/demo
mnv1-report --experiment tradeoff16 --sweep <sweep key or parent run id> --out reports/t16
mnv1-report --experiment demo --status
mnv1-report --experiment demo --compare mnv1_a0.5_r160 mnv1_a0.5_r192
mnv1-report --experiment demo --register mnv1-demo --max-mult-adds 150e6
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mnv1 import interrupt
from mnv1.cli import VERBOSE_FLAG, VERBOSE_HELP, quiet_tensorflow
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
    # One --metric for both uses: what --compare compares, what --register maximises.
    parser.add_argument(
        "--metric",
        default=None,
        help="with --compare: the metric compared, val_top1 (default), a batch-1 latency of an "
        "exported sweep (latency_ms_fp32_1t, latency_ms_int8_1t, ..._p90_...) or tflite_bytes, "
        "tflite_int8_bytes, val_top1_int8, int8_top1_drop; with --register: the metric the "
        "best cell has the highest of, val_top1 (default) or val_top5",
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
    _register_arguments(parser)
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    return parser


def _register_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--register",
        metavar="NAME",
        default=None,
        help="register the sweep's best finished cell within the budget as a new version of "
        "registered model NAME, with alias champion; builds no report",
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--max-latency-ms",
        type=float,
        default=None,
        metavar="X",
        help="with --register: only cells measured at most X ms (latency_ms_fp32_1t)",
    )
    budget.add_argument(
        "--max-mult-adds",
        type=float,
        default=None,
        metavar="M",
        help="with --register: only cells of at most M mult-adds (150e6 is accepted)",
    )


# What --register may maximise: the accuracies every finished cell logs.
REGISTER_METRICS = ("val_top1", "val_top5")


def _register_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the --register flags as given, or None."""
    extras = [
        flag
        for flag, value in (
            ("--max-latency-ms", args.max_latency_ms),
            ("--max-mult-adds", args.max_mult_adds),
        )
        if value is not None
    ]
    if args.register is None:
        if extras:
            return f"{extras[0]} needs --register NAME"
        if args.metric is not None and not args.compare:
            return "--metric goes with --compare A B or --register NAME"
        return None
    if args.metric not in (None, *REGISTER_METRICS):
        return (
            f"--metric {args.metric}: with --register it must be one of "
            f"{', '.join(REGISTER_METRICS)} (the cell with the highest is registered)"
        )
    if not args.register.strip():
        return "--register needs a non-empty registered model name"
    others = [f for f, v in (("--status", args.status), ("--compare", args.compare)) if v]
    others += ["--out"] if args.out is not None else []
    if others:
        return f"--register builds no report: it does not go with {', '.join(others)}"
    for flag, value in (
        ("--max-latency-ms", args.max_latency_ms),
        ("--max-mult-adds", args.max_mult_adds),
    ):
        if value is not None and not (value > 0 and value < float("inf")):
            return f"{flag} {value:g}: must be a positive number"
    return None


def _register(args: argparse.Namespace) -> int:
    from mnv1.report.pick import Budget
    from mnv1.report.register import register_best

    budget = Budget(max_latency_ms=args.max_latency_ms, max_mult_adds=args.max_mult_adds)
    done = register_best(
        args.experiment,
        args.register,
        budget,
        args.metric or "val_top1",
        sweep=args.sweep,
        uri=args.tracking_uri,
    )
    v = done.version
    print(f"registered {done.choice.winner.run_name} as version {v.version} of {v.name!r}")
    print(f"  alias: champion -> version {v.version} (model {v.model_id}, run {v.run_id})")
    print(f"  why: {done.choice.reason}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    quiet_tensorflow(argv)  # first: before anything below imports TensorFlow
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

    problem = _register_problem(args)
    if problem is not None:
        parser.error(problem)
    try:
        if args.register is not None:
            return _register(args)
        if args.status:
            print(sweep_status(args.experiment, args.sweep, args.tracking_uri), end="")
            return 0
        if args.compare:
            from mnv1.report.compare import check_metric

            metric = args.metric or "val_top1"
            check_metric(metric)  # before the store is opened
            a, b = args.compare
            text = compare_cells(
                args.experiment, a, b, args.sweep, args.tracking_uri, metric=metric
            )
            print(text, end="")
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
