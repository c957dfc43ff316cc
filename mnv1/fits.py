"""Two small statistics the latency comparisons need: a log-log least-squares fit with its R²,
and Spearman's rank correlation. Pure Python, so the report and the benchmarks share them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PowerFit:
    """``y ≈ scale · x^slope``, fitted as a line in log-log space; ``r2`` of that line."""

    slope: float
    scale: float
    r2: float
    points: int


def loglog_fit(x: Sequence[float], y: Sequence[float]) -> PowerFit:
    """Least squares of ``log y`` on ``log x`` (positive values only; at least two distinct x)."""
    pairs = [(math.log(a), math.log(b)) for a, b in zip(x, y, strict=True) if a > 0 and b > 0]
    n = len(pairs)
    if n < 2:
        raise ValueError(f"a log-log fit needs two positive points, got {n}")
    mx = sum(p[0] for p in pairs) / n
    my = sum(p[1] for p in pairs) / n
    sxx = sum((p[0] - mx) ** 2 for p in pairs)
    if sxx == 0:
        raise ValueError("a log-log fit needs at least two distinct x values")
    sxy = sum((p[0] - mx) * (p[1] - my) for p in pairs)
    slope = sxy / sxx
    intercept = my - slope * mx
    total = sum((p[1] - my) ** 2 for p in pairs)
    residual = sum((p[1] - intercept - slope * p[0]) ** 2 for p in pairs)
    r2 = 1.0 - residual / total if total > 0 else 1.0
    return PowerFit(slope=slope, scale=math.exp(intercept), r2=r2, points=n)


def ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Spearman's ρ: the Pearson correlation of the ranks (ties at mean rank); None for fewer
    than two pairs or a constant series, which have no rank order to agree with."""
    if len(a) != len(b):
        raise ValueError(f"spearman needs pairs, got {len(a)} x values and {len(b)} y values")
    if len(a) < 2:
        return None
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = math.sqrt(sum((x - ma) ** 2 for x in ra))
    vb = math.sqrt(sum((y - mb) ** 2 for y in rb))
    if va == 0 or vb == 0:
        return None
    return cov / (va * vb)
