"""The paper's Figures 4 and 5 from our runs, with the TF-slim checkpoints as a second series.

Figures are built on ``matplotlib.figure.Figure`` directly, never through ``pyplot``: no global
figure registry to leak from a long-lived sweep process, and the Agg canvas renders the PNG
without any display. Each function returns the Figure, so callers (and tests) can read the
plotted points back from ``ax.collections``; :data:`OURS_GID` and :data:`REFERENCE_GID` tag which
series is which. A cell with several finished seeds is plotted at its mean with an error bar of
± one sample standard deviation (a ``LineCollection`` tagged :data:`ERRORBAR_GID`, one vertical
segment per cell). Each figure names its dataset and budget under its title.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mnv1 import paper
from mnv1.report.fidelity import SLIM_RELEASES, LogLinearFit, loglinear_fit, slim_top1
from mnv1.report.records import CellRecord

OURS_GID = "ours"
REFERENCE_GID = "reference"
ERRORBAR_GID = "ours-sd"
FIT_GID = "fit-ours"
REFERENCE_FIT_GID = "fit-reference"
# Colours per ρ as in the paper's figures (one colour per input resolution); resolutions off the
# paper's grid take the next colours of the same qualitative palette.
_PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def series_colours(values: Sequence[float]) -> dict[float, str]:
    """One colour per value, largest first (ρ in Figures 4–5, α in the deploy figures)."""
    ordered = sorted(set(values), reverse=True)
    return {v: _PALETTE[i % len(_PALETTE)] for i, v in enumerate(ordered)}


def set_title(ax: Any, title: str, subtitle: str = "") -> None:
    """The figure's title with its dataset-and-budget line wrapped to the axes' width, so a
    long subtitle is not cut off at the figure's edges."""
    lines = [title, *textwrap.wrap(subtitle, 95)]
    ax.set_title("\n".join(lines), fontsize=10)


def _fit_line(ax: object, fit: LogLinearFit, xs: Sequence[float], **style: object) -> None:
    lo, hi = min(xs), max(xs)
    grid = [10 ** (math.log10(lo) + (math.log10(hi) - math.log10(lo)) * i / 50) for i in range(51)]
    ax.plot(grid, [fit(x) for x in grid], **style)  # type: ignore[attr-defined]


def _trade_off(
    records: Sequence[CellRecord],
    release: str,
    x_ours: Callable[[CellRecord], float | None],
    x_slim: Callable[[paper.SlimRow], float],
    xlabel: str,
    title: str,
    fit: bool,
    subtitle: str = "",
) -> Figure:
    # (ρ, x, top-1) of every finished separable cell that logged the x quantity.
    ours = [
        (r.resolution, x, r.top1)
        for r in records
        if r.variant == "separable" and r.top1 is not None and (x := x_ours(r) or 0.0) > 0
    ]
    # (ρ, x, top-1, sd) of those with a seed-to-seed spread.
    spread = [
        (r.resolution, x, r.top1, r.top1_sd)
        for r in records
        if r.variant == "separable"
        and r.top1 is not None
        and r.top1_sd is not None
        and (x := x_ours(r) or 0.0) > 0
    ]
    slim = paper.SLIM_CHECKPOINTS
    colours = series_colours([res for res, _, _ in ours] + [s.resolution for s in slim])
    fig = Figure(figsize=(7.5, 5.0), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    _plot_ours(ax, ours, spread, colours)
    rel = SLIM_RELEASES[release]
    ref_x = [x_slim(s) for s in slim]
    ref_y = [slim_top1(s, release) for s in slim]
    ax.scatter(
        ref_x,
        ref_y,
        facecolors="none",
        edgecolors=[colours[s.resolution] for s in slim],
        marker="s",
        s=42,
        zorder=2,
        label=f"TF-slim {rel} (ImageNet)",
        gid=REFERENCE_GID,
    )
    if fit:
        _plot_fits(ax, [x for _, x, _ in ours], [y for _, _, y in ours], ref_x, ref_y)
    _log_x_axis(ax)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Top-1 accuracy (%)")
    set_title(ax, title, subtitle)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _plot_ours(
    ax: Axes,
    ours: list[tuple[int, float, float]],
    spread: list[tuple[int, float, float, float]],
    colours: dict[float, str],
) -> None:
    """Our cells, one series per ρ (largest first), each with its seed-to-seed error bars."""
    for res in sorted({res for res, _, _ in ours}, reverse=True):
        ax.scatter(
            [x for r, x, _ in ours if r == res],
            [y for r, _, y in ours if r == res],
            color=colours[res],
            marker="o",
            s=42,
            zorder=3,
            label=f"ours, ρ={res}",
            gid=OURS_GID,
        )
        bars = [(x, y, sd) for r, x, y, sd in spread if r == res]
        if bars:
            container = ax.errorbar(
                [x for x, _, _ in bars],
                [y for _, y, _ in bars],
                yerr=[sd for _, _, sd in bars],
                fmt="none",
                ecolor=colours[res],
                elinewidth=1.0,
                capsize=3,
                zorder=3,
                label="_nolegend_",
            )
            for collection in container.lines[2]:
                collection.set_gid(ERRORBAR_GID)


def _plot_fits(
    ax: Axes, xs: list[float], ys: list[float], ref_x: list[float], ref_y: list[float]
) -> None:
    """The log-linear fits of our cells and of the TF-slim checkpoints (when each has one)."""
    ours_fit = loglinear_fit(xs, ys)
    if ours_fit is not None:
        _fit_line(
            ax,
            ours_fit,
            xs,
            color="black",
            linewidth=1.2,
            label=f"ours, log-linear fit ({ours_fit.slope:+.1f} pp/decade)",
            gid=FIT_GID,
        )
    ref_fit = loglinear_fit(ref_x, ref_y)
    if ref_fit is not None:
        _fit_line(
            ax,
            ref_fit,
            ref_x,
            color="grey",
            linestyle="--",
            linewidth=1.0,
            label=f"TF-slim, log-linear fit ({ref_fit.slope:+.1f} pp/decade)",
            gid=REFERENCE_FIT_GID,
        )


def _log_x_axis(ax: Axes) -> None:
    ax.set_xscale("log")
    # Plain numbers (20, 50, 100 …) read better than 2×10¹, and matplotlib's minor labels on
    # a short log axis overlap the major ones.
    ax.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def figure4(records: Sequence[CellRecord], release: str = "2017", subtitle: str = "") -> Figure:
    """Top-1 against mult-adds (log axis), one colour per ρ, with log-linear fits."""
    return _trade_off(
        records,
        release,
        x_ours=lambda r: None if r.mult_adds is None else r.mult_adds / 1e6,
        x_slim=lambda s: s.macs_m,
        xlabel="Million Mult-Adds (log scale)",
        title="Figure 4: accuracy vs computation",
        fit=True,
        subtitle=subtitle,
    )


def figure5(records: Sequence[CellRecord], release: str = "2017", subtitle: str = "") -> Figure:
    """Top-1 against params (log axis), one colour per ρ: the points stack in one column per α."""
    return _trade_off(
        records,
        release,
        x_ours=lambda r: None if r.params is None else r.params / 1e6,
        x_slim=lambda s: s.params_m,
        xlabel="Million Parameters (log scale)",
        title="Figure 5: accuracy vs parameters",
        fit=False,
        subtitle=subtitle,
    )


def png_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
