"""Build the report of one sweep: read the runs, rebuild the tables and figures, write, log.

:func:`build_report` is what ``mnv1-report`` and the sweep's end call. :func:`assemble` does the
work on runs already read, so it needs no tracking store.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from mnv1.report import deploy, figures, paper_tables
from mnv1.report.budget import budget_text
from mnv1.report.context import SYNTHETIC_DESIGN, SweepContext, sweep_context
from mnv1.report.document import Block, FigureBlock, Heading, Paragraph, TableBlock, to_markdown
from mnv1.report.fidelity import SLIM_RELEASES, AnalyticCheck, Fidelity, check_release, fidelity
from mnv1.report.grid import grid_table, runs_table, status_matrix, top1_matrix
from mnv1.report.html import to_html
from mnv1.report.paper_counts import Costs, CostsFn
from mnv1.report.records import CellRecord, cell_records, status_counts
from mnv1.report.tables import Table
from mnv1.tracking import schema
from mnv1.tracking.queries import SweepRuns, read_sweep

MARKDOWN = "report.md"
HTML = "report.html"
FIDELITY_JSON = "fidelity.json"
FIGURE4 = "figure4.png"
FIGURE5 = "figure5.png"

Table3Fn = Callable[[], Sequence[tuple[str, Costs]]]


@dataclass(frozen=True)
class ReportResult:
    out_dir: Path
    files: tuple[Path, ...]
    """Every file written, in the order written."""
    experiment: str
    parent_run_id: str
    sweep_key: str
    records: tuple[CellRecord, ...]
    tables: dict[str, Table]
    """By key: ``table2``, ``table6``, ``grid``, ``fidelity`` …"""
    fidelity: Fidelity
    figures: dict[str, Figure]
    """``figure4`` and ``figure5``; read the plotted points from ``ax.collections``."""
    artifacts: tuple[str, ...] = field(default=())
    """Artifact paths on the parent run after logging (empty when not logged)."""


def _default_table3() -> Table3Fn:
    from mnv1.costs import table3_costs  # builds Keras layers: imported only when a report is made

    return table3_costs


def assemble(
    sweep: SweepRuns,
    out_dir: str | Path,
    release: str = "2017",
    costs_for: CostsFn | None = None,
    table3_rows: Table3Fn | None = None,
) -> ReportResult:
    """Write the report of ``sweep`` into ``out_dir`` (created if needed); no tracking calls."""
    check_release(release)
    costs = costs_for or paper_tables.default_costs()
    rows3 = (table3_rows or _default_table3())()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = cell_records(sweep)
    context = sweep_context(sweep.parent.tags, sweep.runs, records)

    paper_tabs, checks = _paper_tables(records, costs, rows3, release)
    fid = fidelity(records, checks, release, context)
    grid_tabs = [top1_matrix(records), grid_table(records), runs_table(records)]
    subtitle = context.caption()
    note = context.figure_note()
    figs = {
        "figure4": figures.figure4(records, release, note),
        "figure5": figures.figure5(records, release, note),
    }
    pngs = {name: figures.png_bytes(fig) for name, fig in figs.items()}
    deploy_blocks, deploy_tabs, deploy_figs = _deploy_section(sweep, records, subtitle)
    figs.update(deploy_figs)
    pngs.update({f"{name}.png": figures.png_bytes(fig) for name, fig in deploy_figs.items()})

    parent = sweep.parent
    title = f"mnv1 report: {sweep.experiment}, sweep {parent.sweep_key or parent.run_id}"
    blocks = _intro_blocks(title, sweep, records, context, release)
    blocks += _body_blocks(fid, paper_tabs, pngs, deploy_blocks, grid_tabs, release, subtitle)
    tables = {
        t.key: t
        for t in [fid.summary_table(), *paper_tabs, *deploy_tabs, *grid_tabs, fid.checks_table()]
    }
    files: dict[str, str | bytes] = {
        MARKDOWN: to_markdown(blocks),
        HTML: to_html(title, blocks),
        FIGURE4: pngs.pop("figure4"),
        FIGURE5: pngs.pop("figure5"),
        **{f"{key}.csv": table.to_csv() for key, table in tables.items()},
        FIDELITY_JSON: json.dumps(fid.to_dict(), indent=2) + "\n",
        **pngs,  # the deployment figures
    }
    return ReportResult(
        out_dir=out,
        files=tuple(_write(out, files)),
        experiment=sweep.experiment,
        parent_run_id=parent.run_id,
        sweep_key=parent.sweep_key,
        records=tuple(records),
        tables=tables,
        fidelity=fid,
        figures=figs,
    )


def _paper_tables(
    records: list[CellRecord], costs: CostsFn, rows3: Sequence[tuple[str, Costs]], release: str
) -> tuple[list[Table], list[AnalyticCheck]]:
    """Tables 2 and 3, then each paper table the sweep's cells can be compared with, and the
    analytic checks each one found."""
    checks: list[AnalyticCheck] = []
    paper_tabs: list[Table] = []
    for build in (lambda: paper_tables.table2(costs), lambda: paper_tables.table3(rows3)):
        table, found = build()
        paper_tabs.append(table)
        checks += found
    for key in paper_tables.tables_to_show(records):
        table, found = paper_tables.comparison_table(key, records, costs, release)
        paper_tabs.append(table)
        checks += found
    return paper_tabs, checks


def _intro_blocks(
    title: str,
    sweep: SweepRuns,
    records: list[CellRecord],
    context: SweepContext,
    release: str,
) -> list[Block]:
    """The title and the paragraphs that say what was trained, on what, and where it is stored."""
    parent = sweep.parent
    counts = status_counts(records)
    budget = budget_text(r for r in sweep.runs if r.parent_run_id == parent.run_id)
    rel = SLIM_RELEASES[release]
    blocks: list[Block] = [
        Heading(title, 1),
        Paragraph(
            f"**Data**: {context.dataset_text()}. **Training budget** per run: "
            f"{context.budget_text()}. **Seeds**: {context.seeds_text()}. "
            f"**Comparison with TF-slim's ImageNet accuracies**: {context.comparison_label()}."
        ),
        Paragraph(
            f"Experiment `{sweep.experiment}`, study `{parent.study or '?'}`, parent run "
            f"`{parent.run_id}` ({parent.status}), tracking store `{sweep.tracking_uri}`. "
            f"{len(records)} cells: "
            + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
            + f". Reference accuracies: the paper and the TF-slim {rel} checkpoints (ImageNet)."
            + (f" {budget}" if budget else "")
        ),
    ]
    if context.synthetic:
        blocks.append(Paragraph(SYNTHETIC_DESIGN))
    return blocks


def _body_blocks(
    fid: Fidelity,
    paper_tabs: list[Table],
    pngs: dict[str, bytes],
    deploy_blocks: list[Block],
    grid_tabs: list[Table],
    release: str,
    subtitle: str,
) -> list[Block]:
    """Fidelity summary, the paper's tables, the figures, the grid and the analytic checks."""
    rel = SLIM_RELEASES[release]
    bars = " Error bars: ± one standard deviation over seeds." if fid.noise.several_seeds else ""
    return [
        Heading("Fidelity summary"),
        TableBlock(fid.summary_table()),
        Heading("The paper's tables"),
        Paragraph(paper_tables.CONVENTIONS),
        *(TableBlock(t) for t in paper_tabs),
        Heading("Figures"),
        FigureBlock(
            FIGURE4,
            pngs["figure4"],
            "Figure 4: top-1 against mult-adds (log axis), one colour per ρ; circles ours, "
            f"squares TF-slim {rel} (ImageNet); lines the log-linear fits.{bars} {subtitle}",
        ),
        FigureBlock(
            FIGURE5,
            pngs["figure5"],
            f"Figure 5: top-1 against parameters; circles ours, squares TF-slim {rel} "
            f"(ImageNet).{bars} {subtitle}",
        ),
        *deploy_blocks,
        Heading("The α × ρ grid"),
        Paragraph(f"Noise: {fid.noise_text()}."),
        *(TableBlock(t) for t in grid_tabs),
        Heading("Analytic checks"),
        TableBlock(fid.checks_table()),
    ]


def _write(out: Path, files: dict[str, str | bytes]) -> list[Path]:
    """Write each file into ``out`` in order (text as UTF-8); their paths, in that order."""
    written: list[Path] = []
    for name, data in files.items():
        path = out / name
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")
        written.append(path)
    return written


def _deploy_section(
    sweep: SweepRuns, records: Sequence[CellRecord], subtitle: str
) -> tuple[list[Block], list[Table], dict[str, Figure]]:
    """The deploy-side table and figures (``mnv1.report.deploy``) when the sweep exported."""
    cpus = sorted(
        {r.tags[schema.TAG_EXPORT_CPU] for r in sweep.runs if schema.TAG_EXPORT_CPU in r.tags}
    )
    runtimes = sorted(
        {
            r.tags[schema.TAG_EXPORT_RUNTIME]
            for r in sweep.runs
            if schema.TAG_EXPORT_RUNTIME in r.tags
        }
    )
    hardware = f"{' / '.join(cpus) or 'an unrecorded CPU'} ({', '.join(runtimes) or '?'})"
    table = deploy.deploy_table(records, hardware)
    if table is None:
        return [], [], {}
    figs = {
        "accuracy_vs_latency": deploy.accuracy_vs_latency(records, subtitle),
        "latency_vs_mult_adds": deploy.latency_vs_mult_adds(records, subtitle),
    }
    pngs = {name: figures.png_bytes(fig) for name, fig in figs.items()}
    blocks: list[Block] = [
        Heading("Deploy-side trade-off"),
        Paragraph(
            "Each cell's model as LiteRT flatbuffers (float32; full-integer int8 calibrated on "
            "its own training images), timed at batch 1 on this machine. Does mult-adds predict "
            f"latency here (the paper's §3)? {deploy.shape(records).text()}"
        ),
        TableBlock(table),
        FigureBlock(
            deploy.ACCURACY_VS_LATENCY,
            pngs["accuracy_vs_latency"],
            "Accuracy vs latency: the paper's Figure 4 with measured batch-1 latency (1 thread) "
            f"on the x-axis, one series per α along ρ; circles float32, triangles int8. {subtitle}",
        ),
        FigureBlock(
            deploy.LATENCY_VS_MULT_ADDS,
            pngs["latency_vs_mult_adds"],
            "Latency vs mult-adds (log-log) with the power-law fits and their R²; grey: the "
            f"published TensorFlow Lite latencies of the same variants on a Pixel 3 (right "
            f"axis; {deploy.SOURCE}), a shape comparison. {subtitle}",
        ),
    ]
    return blocks, [table], figs


def build_report(
    experiment: str,
    out_dir: str | Path,
    sweep: str | None = None,
    uri: str | None = None,
    *,
    slim_release: str = "2017",
    log_artifacts: bool = True,
) -> ReportResult:
    """Read one sweep (default: the experiment's latest), write its report, log it on the parent.

    ``sweep`` is a sweep key or a parent run id; ``uri`` defaults to ``$MLFLOW_TRACKING_URI``,
    else ``sqlite:///mlflow.db``. Missing or failed cells appear as such; they never stop it.
    """
    check_release(slim_release)
    runs = read_sweep(experiment, sweep, uri)
    result = assemble(runs, out_dir, slim_release)
    if not log_artifacts:
        return result
    from mnv1.tracking.artifacts import log_report

    logged = log_report(result.parent_run_id, result.files, runs.tracking_uri)
    return dataclasses.replace(result, artifacts=tuple(logged))


def sweep_status(experiment: str, sweep: str | None = None, uri: str | None = None) -> str:
    """The α × ρ completion matrix of one sweep (default: the latest), as terminal text."""
    runs = read_sweep(experiment, sweep, uri)
    records = cell_records(runs)
    counts = status_counts(records)
    parent = runs.parent
    head = (
        f"experiment {experiment}, sweep {parent.sweep_key or '?'} (parent run {parent.run_id}, "
        f"{parent.status}): {len(records)} cells, "
        + ", ".join(f"{n} {s}" for s, n in counts.items())
    )
    return head + "\n\n" + status_matrix(records).to_text()


def compare_cells(
    experiment: str,
    a: str,
    b: str,
    sweep: str | None = None,
    uri: str | None = None,
    metric: str = "val_top1",
) -> str:
    """``mnv1-report --compare A B``: the difference of two cells or runs of one sweep (default:
    the latest) with its interval, as terminal text."""
    from mnv1.report.compare import compare

    runs = read_sweep(experiment, sweep, uri)
    parent = runs.parent
    head = f"experiment {experiment}, sweep {parent.sweep_key or '?'} (parent run {parent.run_id})"
    return head + "\n" + compare(cell_records(runs), a, b, metric).text()
