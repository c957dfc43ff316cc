"""The deploy-side trade-off of an exported sweep: a table beside Tables 6-7 and two figures.

Per cell (``export.enabled``): mult-adds, params, flatbuffer sizes, batch-1 single-thread latency
and top-1 of the float32 and the int8 model. "Accuracy vs latency" is the paper's Figure 4 with
measured latency on the x-axis, one series per α; "latency vs mult-adds" fits
``latency ∝ mult-adds^slope`` in log-log space and gives its R²: whether mult-adds predicted
latency on this machine (the paper's §3 claim). The published TensorFlow Lite latencies of the
same 16 variants (``mnv1.tflite_published``, a Pixel 3) sit beside ours on their own axis as a
shape comparison: ranks (Spearman's ρ) and slopes compare across hardware, milliseconds do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mnv1.fits import PowerFit, loglog_fit, spearman
from mnv1.report.figures import series_colours, set_title
from mnv1.report.records import CellRecord
from mnv1.report.tables import Column, Table
from mnv1.tflite_published import SOURCE, published_ms
from mnv1.tracking import schema

ACCURACY_VS_LATENCY = "accuracy_vs_latency.png"
LATENCY_VS_MULT_ADDS = "latency_vs_mult_adds.png"
OURS_GID = "ours"
PUBLISHED_GID = "published"
FIT_GID = "fit-ours"
KINDS = {"fp32": schema.METRIC_LATENCY_FP32, "int8": schema.METRIC_LATENCY_INT8}


def exported(records: Sequence[CellRecord]) -> list[CellRecord]:
    """Finished separable cells that logged both single-thread latencies, by α then ρ."""
    found = [
        r
        for r in records
        if r.variant == "separable"
        and r.mult_adds
        and all(r.metric(key) is not None for key in KINDS.values())
    ]
    return sorted(found, key=lambda r: (-r.alpha, -r.resolution))


def _ms(record: CellRecord, key: str) -> float:
    """A logged metric as a plotted value (NaN where missing: matplotlib leaves a gap)."""
    value = record.metric(key)
    return float("nan") if value is None else value


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _kb(value: float | None) -> float | None:
    return None if value is None else value / 1024.0


def deploy_table(records: Sequence[CellRecord], hardware: str) -> Table | None:
    """The per-cell table, or None when no cell exported."""
    cells = exported(records)
    if not cells:
        return None
    table = Table(
        "deploy",
        "Deploy-side trade-off: LiteRT size, batch-1 latency and top-1, float32 and int8",
        [
            Column("α", ".2f"),
            Column("ρ", "d"),
            Column("Mult-Adds (M)", ".1f"),
            Column("Params (M)", ".2f"),
            Column("fp32 size (KB)", ",.0f"),
            Column("int8 size (KB)", ",.0f"),
            Column("fp32 latency (ms)", ".2f"),
            Column("int8 latency (ms)", ".2f"),
            Column("top-1 fp32 (%)", ".1f"),
            Column("top-1 int8 (%)", ".1f"),
            Column("published fp32 (ms)", ".1f"),
            Column("published int8 (ms)", ".1f"),
        ],
    )
    for r in cells:
        table.add(
            r.alpha,
            r.resolution,
            (r.mult_adds or 0) / 1e6,
            None if r.params is None else r.params / 1e6,
            _kb(r.metric(schema.METRIC_TFLITE_BYTES)),
            _kb(r.metric(schema.METRIC_TFLITE_INT8_BYTES)),
            r.metric(schema.METRIC_LATENCY_FP32),
            r.metric(schema.METRIC_LATENCY_INT8),
            r.top1,
            _pct(r.metric(schema.METRIC_VAL_TOP1_INT8)),
            published_ms(r.alpha, r.resolution, "fp32"),
            published_ms(r.alpha, r.resolution, "int8"),
        )
    table.notes.append(
        f"Latency: median of the timed single-image runs, 1 interpreter thread, XNNPACK, on "
        f"{hardware}. Top-1 fp32 is val_top1; top-1 int8 is the full-integer int8 flatbuffer on "
        f"the same validation images, through the interpreter. Published: {SOURCE} (quantized: "
        "quantization-aware trained checkpoints); other hardware, compare the order, not the ms."
    )
    return table


@dataclass(frozen=True)
class Shape:
    """Whether mult-adds predicted latency here, and how our order matches the published one."""

    fits: dict[str, PowerFit]
    published_fits: dict[str, PowerFit]
    rho: dict[str, float]
    """Spearman's ρ of our cells' latency against the published latency of the same cells."""

    def text(self) -> str:
        parts = []
        for kind, fit in self.fits.items():
            line = (
                f"{kind}: latency ∝ mult-adds^{fit.slope:.2f}, R² {fit.r2:.3f} over "
                f"{fit.points} cells"
            )
            if kind in self.published_fits:
                pub = self.published_fits[kind]
                line += f" (published: slope {pub.slope:.2f}, R² {pub.r2:.3f})"
            if kind in self.rho:
                line += f"; Spearman ρ against the published order {self.rho[kind]:.3f}"
            parts.append(line)
        return "; ".join(parts) + "." if parts else ""


def shape(records: Sequence[CellRecord]) -> Shape:
    cells = exported(records)
    fits: dict[str, PowerFit] = {}
    published_fits: dict[str, PowerFit] = {}
    rho: dict[str, float] = {}
    for kind, key in KINDS.items():
        xs = [float(r.mult_adds or 0) for r in cells]
        ys = [r.metric(key) or 0.0 for r in cells]
        if len(set(xs)) >= 2:
            fits[kind] = loglog_fit(xs, ys)
        known = [
            (x, y, p)
            for r, x, y in zip(cells, xs, ys, strict=True)
            if (p := published_ms(r.alpha, r.resolution, kind)) is not None
        ]
        if len({x for x, _, _ in known}) >= 2:
            published_fits[kind] = loglog_fit([k[0] for k in known], [k[2] for k in known])
            ours = [k[1] for k in known]
            theirs = [k[2] for k in known]
            found = spearman(ours, theirs)
            if found is not None:
                rho[kind] = found
    return Shape(fits, published_fits, rho)


def _log_axis(axis: object) -> None:
    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # type: ignore[attr-defined]
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))  # type: ignore[attr-defined]
    axis.set_minor_formatter(ticker.NullFormatter())  # type: ignore[attr-defined]


def accuracy_vs_latency(records: Sequence[CellRecord], subtitle: str = "") -> Figure:
    """Figure 4 with measured latency on the x-axis: one series per α (points along ρ), float32
    filled circles, int8 (its own top-1) open triangles."""
    cells = [r for r in exported(records) if r.top1 is not None]
    colours = series_colours([r.alpha for r in cells])
    fig = Figure(figsize=(7.5, 5.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for alpha in sorted({r.alpha for r in cells}, reverse=True):
        series = sorted((r for r in cells if r.alpha == alpha), key=lambda r: r.resolution)
        ax.plot(
            [_ms(r, schema.METRIC_LATENCY_FP32) for r in series],
            [r.top1 or float("nan") for r in series],
            marker="o",
            color=colours[alpha],
            label=f"α={alpha:g}, float32",
            gid=OURS_GID,
        )
        ax.plot(
            [_ms(r, schema.METRIC_LATENCY_INT8) for r in series],
            [100.0 * _ms(r, schema.METRIC_VAL_TOP1_INT8) for r in series],
            marker="^",
            markerfacecolor="none",
            linestyle=":",
            color=colours[alpha],
            label=f"α={alpha:g}, int8",
            gid=OURS_GID,
        )
    ax.set_xscale("log")
    _log_axis(ax.xaxis)
    ax.set_xlabel("Batch-1 latency, 1 thread (ms, log scale)")
    ax.set_ylabel("Top-1 accuracy (%)")
    title = "Accuracy vs latency (Figure 4 with measured latency)"
    set_title(ax, title, subtitle)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def latency_vs_mult_adds(records: Sequence[CellRecord], subtitle: str = "") -> Figure:
    """Our latency against mult-adds (log-log) with the power-law fits; the published Pixel 3
    latencies of the same cells on the right axis (another device: the slope is what compares)."""
    cells = exported(records)
    found = shape(records)
    fig = Figure(figsize=(7.5, 5.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    right = ax.twinx()
    styles = {"fp32": ("o", "tab:blue"), "int8": ("^", "tab:red")}
    for kind, key in KINDS.items():
        marker, colour = styles[kind]
        xs = [(r.mult_adds or 0) / 1e6 for r in cells]
        ys = [r.metric(key) or 0.0 for r in cells]
        ax.scatter(
            xs, ys, marker=marker, color=colour, zorder=3, label=f"ours {kind}", gid=OURS_GID
        )
        fit = found.fits.get(kind)
        if fit is not None and xs:
            lo, hi = min(xs), max(xs)
            grid = [lo * (hi / lo) ** (i / 40) for i in range(41)]
            ax.plot(
                grid,
                [fit.scale * (x * 1e6) ** fit.slope for x in grid],
                color=colour,
                linewidth=1.0,
                label=f"ours {kind} fit: slope {fit.slope:.2f}, R² {fit.r2:.2f}",
                gid=FIT_GID,
            )
        published = [
            (x, p)
            for r, x in zip(cells, xs, strict=True)
            if (p := published_ms(r.alpha, r.resolution, kind)) is not None
        ]
        if published:
            right.scatter(
                [x for x, _ in published],
                [p for _, p in published],
                marker=marker,
                facecolors="none",
                edgecolors="grey",
                zorder=2,
                label=f"published {kind} (Pixel 3)",
                gid=PUBLISHED_GID,
            )
    for axis in (ax, right):
        axis.set_xscale("log")
        axis.set_yscale("log")
        _log_axis(axis.yaxis)
    _log_axis(ax.xaxis)
    ax.set_xlabel("Million Mult-Adds (log scale)")
    ax.set_ylabel("Our batch-1 latency, 1 thread (ms)")
    right.set_ylabel("Published TFLite latency, Pixel 3, 4 threads (ms)")
    title = "Latency vs mult-adds"
    set_title(ax, title, subtitle)
    ax.grid(True, which="both", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    more, more_labels = right.get_legend_handles_labels()
    ax.legend(handles + more, labels + more_labels, fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig
