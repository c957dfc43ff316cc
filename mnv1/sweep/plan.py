"""A sweep's plan before it runs: per cell, the steps, the images and an estimated wall time.

Arithmetic over the cells' configs (with their datasets' split sizes, where they are known
without reading the data: ``mnv1.data.known_sizes``) and measured figures, from the best source
each cell has (``source``):

* ``finished``: the newest cell of this host with the same timing identity that finished before
  (``mnv1.sweep.learned``): what it took, scaled to this budget;
* ``probe``: the probe's short real run of this shape (``mnv1.sweep.probe``), in a process
  started like a cell's worker, with this host's start-up from its finished cells where it has
  any;
* ``model``: placed between the probe's two shapes (the grid's costliest and cheapest) by its
  work per step (mult-adds × global batch): a straight line joins the two ends, so the fixed
  costs a small cell still pays (Python, the per-step host sync) are not scaled away.

What one cell costs, as estimated (``mnv1.sweep.figures``)::

    start-up + once per cell + epochs × (per epoch + evaluation batches × per batch)
    + epochs × steps per epoch × one steady step
    (+ the LiteRT export's measured parts, with ``export.enabled``, for a probe's estimate)

Once per launch, at its first cell: the warm workers' zygote start where it is not up yet
(``launch_seconds``; the probe measured it). Not estimated: preparing the dataset (once per sweep,
before the first cell) and the final report. The live progress (``SweepProgress``) corrects the
remaining estimate by how the finished cells compared with theirs.

``choose_steps`` picks the training budget (steps per epoch, the same for every cell) that makes
the plan fit a wall-time target: the adaptive budget of ``train.target_minutes``, from the probe
alone (``mnv1.cli.plan``), so a relaunch chooses the same budget and finds its runs. The target is
per cell of the grid, not per run: a cell swept over seeds (``train.seed=range(3)``, a study's
``seeds: 3``) counts once, so every seed trains at the budget one seed would, seed 0's runs are
the single-seed sweep's runs (same budget, same run keys), and three seeds cost three times the
target.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from mnv1.config import RunConfig, run_name
from mnv1.run_key import run_key
from mnv1.sweep.figures import Figures, RunShape, eval_batches, from_metrics, mix, scaled
from mnv1.training.probe import ProbeTimings

if TYPE_CHECKING:
    from mnv1.sweep.learned import HostHistory, Startup

# The smallest budget a target may choose: the throughput meter needs a few steps per epoch.
MIN_STEPS_PER_EPOCH = 5
# Chosen budgets of 2 × this or more are rounded down to a multiple of it, so the small differences
# between two probes of one machine (or of two similar machines) usually choose the same budget,
# hence the same run keys. Budgets of 5 to 9 steps stay as chosen: rounding them down to 5 would
# take up to 4 of 9 steps (44%) of the training a slow machine can afford.
STEP_QUANTUM = 5
# Where a cell's estimate comes from.
SOURCE_FINISHED = "finished"  # the newest finished cell of this host like it (mnv1.sweep.learned)
SOURCE_PROBE = "probe"  # the probe's short run of this very shape
SOURCE_MODEL = "model"  # placed between the probed shapes by its work per step
SOURCES = (SOURCE_FINISHED, SOURCE_PROBE, SOURCE_MODEL)


def shape_of(cfg: RunConfig) -> str:
    """What decides one training step's speed (not its count): the probe's unit of measure."""
    return (
        f"{run_name(cfg.model.alpha, cfg.model.resolution, cfg.model.variant)}"
        f"_b{cfg.train.batch_size}_c{num_classes(cfg)}"
    )


def num_classes(cfg: RunConfig) -> int:
    """The classifier's width: known for the synthetic data; ImageNet's 1000 otherwise (at most
    1M of 569M mult-adds at 1.0-224, and no dataset is opened to find out)."""
    return cfg.data.synthetic.num_classes if cfg.data.source == "synthetic" else 1000


def split_sizes(cfg: RunConfig) -> tuple[int | None, int | None]:
    """Training and validation examples one epoch sees: from the config for the synthetic data,
    else from TFDS's metadata of a prepared copy or the published sizes
    (``mnv1.data.known_sizes``); None where nothing says so before the data is prepared."""
    if cfg.data.source != "synthetic":
        from mnv1.data.known_sizes import epoch_sizes

        found = epoch_sizes(cfg.data)
        if found is None:
            return None, cfg.data.max_val_examples
        train, val = found
    else:
        train = cfg.data.synthetic.train_size
        val = cfg.data.synthetic.val_size
    if cfg.data.max_val_examples is not None:
        val = min(val, cfg.data.max_val_examples)
    return train, val


@dataclass(frozen=True)
class ProbePoint(ProbeTimings):
    """One probed cell: its short run as the probe process measured it (``ProbeTimings``
    names each part), the exit of that process as its parent timed it, and the work per step
    the plan interpolates in."""

    exit_s: float = 0.0

    @property
    def work(self) -> float:
        return float(self.mult_adds * self.batch)

    @property
    def figures(self) -> Figures:
        """The probed run's figures (``mnv1.sweep.figures``)."""
        shape = RunShape(
            self.epochs,
            self.steps_per_epoch,
            self.batch,
            eval_batches(self.val_examples, self.batch, self.bn_batches),
        )
        return from_metrics(self.metrics, shape, self.exit_s)


@dataclass(frozen=True)
class ShapeCosts:
    """The probe's figures for one shape, with the LiteRT export's measured parts."""

    figures: Figures
    measured: bool
    """Probed itself (False: placed between the probed shapes by its work per step)."""
    export_convert_s: float = 0.0
    export_fp32_run_s: float = 0.0
    export_int8_run_s: float = 0.0


@dataclass(frozen=True)
class Probe:
    host: str
    key: str
    measured_at: str
    points: tuple[ProbePoint, ...]
    mult_adds: dict[str, int]
    """Mult-adds of every shape of the grid (by ``shape_of``)."""
    zygote_start_s: float | None = None
    """What starting the warm workers' zygote took (``mnv1.sweep.warm``), which a launch pays
    once, at its first cell; None where the probe, like the cells, started cold."""
    cached: bool = False

    def at(self, shape: str, batch: int) -> ShapeCosts:
        """The probe's figures for ``shape``: measured, or interpolated in work per step."""
        work = float(self.mult_adds[shape] * batch)
        points = sorted(self.points, key=lambda p: p.work)
        for p in points:
            if p.shape == shape:
                return _costs(p.figures, True, p, p, 0.0)
        lo, hi = points[0], points[-1]
        if hi.work == lo.work:
            ratio = work / lo.work if lo.work else 1.0
            return _costs(scaled(lo.figures, ratio), False, lo, lo, 0.0, ratio)
        t = (work - lo.work) / (hi.work - lo.work)
        return _costs(mix(lo.figures, hi.figures, t), False, lo, hi, t)


def _costs(
    figures: Figures, measured: bool, lo: ProbePoint, hi: ProbePoint, t: float, ratio: float = 1.0
) -> ShapeCosts:
    """``figures`` with the export's parts a fraction ``t`` of the way from ``lo`` to ``hi``
    (the per-image runs times ``ratio`` for a shape scaled from one probed point)."""

    def part(name: str) -> float:
        a, b = getattr(lo, name), getattr(hi, name)
        return max(0.0, a + (b - a) * t)

    return ShapeCosts(
        figures,
        measured,
        export_convert_s=part("export_convert_s"),
        export_fp32_run_s=part("export_fp32_run_s") * ratio,
        export_int8_run_s=part("export_int8_run_s") * ratio,
    )


@dataclass(frozen=True)
class CellPlan:
    name: str
    run_key: str
    mult_adds: int | None
    epochs: int
    steps_per_epoch: int | None
    """None: one pass over a split whose size is known only once the dataset is prepared."""
    batch: int
    eval_batches: int | None
    """Per epoch: validation batches plus BatchNorm re-estimation batches."""
    fixed_s: float | None = None
    """Estimated seconds that do not depend on the training budget."""
    per_step_s: float | None = None
    """Estimated seconds per step of every epoch together (epochs × one step)."""
    cell_key: str = ""
    """The run key with ``train.seed`` at 0: the same for every seed of one cell, which a
    wall-time target budgets once (empty: the run key)."""
    export_s: float | None = None
    """Of ``fixed_s``: the LiteRT export after training (``export.enabled``), else None."""
    source: str = ""
    """Where the estimate comes from: ``SOURCE_FINISHED``, ``SOURCE_PROBE``, ``SOURCE_MODEL``
    (empty: no estimate)."""
    source_when: str = ""
    """When the finished cell it was learned from ended."""

    @property
    def steps(self) -> int | None:
        return None if self.steps_per_epoch is None else self.epochs * self.steps_per_epoch

    @property
    def images(self) -> int | None:
        return None if self.steps is None else self.steps * self.batch

    @property
    def seconds(self) -> float | None:
        if self.fixed_s is None or self.per_step_s is None or self.steps_per_epoch is None:
            return None
        return self.fixed_s + self.per_step_s * self.steps_per_epoch


@dataclass(frozen=True)
class Budget:
    """A training budget chosen for a wall-time target."""

    target_s: float
    steps_per_epoch: int
    fits: bool
    """False when even the smallest budget does not fit the target."""
    fixed_s: float = 0.0
    """The fixed costs of one run of every cell (what no budget can shrink)."""
    per_step_s: float = 0.0
    """Seconds that one more step per epoch adds to one run of every cell."""
    seeds: int = 1
    """Runs per cell: the target is per seed, so the sweep takes about this many times it."""

    def verdict(self) -> str:
        """Whether the plan fits the target, and when it does not, why."""
        if self.fits:
            return "which it fits"
        if self.fixed_s >= self.target_s:
            return (
                f"which it does NOT fit: the fixed costs alone ({duration(self.fixed_s)}: "
                "start-up, first steps, evaluation, checkpoints) exceed it"
            )
        smallest = self.fixed_s + MIN_STEPS_PER_EPOCH * self.per_step_s
        return (
            f"which it does NOT fit: the smallest budget, {MIN_STEPS_PER_EPOCH} steps per epoch, "
            f"takes {duration(smallest)} ({duration(self.fixed_s)} of it fixed costs)"
        )


@dataclass(frozen=True)
class Plan:
    cells: tuple[CellPlan, ...]
    probe: Probe | None
    budget: Budget | None = None
    no_estimate: str | None = None
    """Why there is no probe (so no estimate), and what an estimate would need."""
    startup: Startup | None = None
    """This host's start-up from its finished cells, used in place of the probe's."""
    launch_s: float = 0.0
    """Paid once by the launch, at its first cell: the warm workers' zygote start, where the
    zygote is not up yet (``launch_seconds``)."""

    @property
    def total_s(self) -> float | None:
        times = [c.seconds for c in self.cells]
        if not times or any(t is None for t in times):
            return None
        return float(sum(t for t in times if t is not None)) + self.launch_s

    def estimates(self) -> dict[str, float]:
        """Estimated seconds per cell, by run key (for the live progress)."""
        return {c.run_key: c.seconds for c in self.cells if c.seconds is not None}

    def sources(self) -> dict[str, int]:
        """How many cells each source estimated, in ``SOURCE_*`` order (none: left out)."""
        counts = {s: sum(1 for c in self.cells if c.source == s) for s in SOURCES}
        return {s: n for s, n in counts.items() if n}


def _cell_plan(cfg: RunConfig, probe: Probe | None, seen: HostHistory | None) -> CellPlan:
    train_size, val_size = split_sizes(cfg)
    t = cfg.train
    steps = t.steps_per_epoch
    if steps is None and train_size is not None:
        steps = train_size // t.batch_size
    batches = None
    if val_size is not None:
        batches = eval_batches(val_size, t.batch_size, t.bn_recalibration_batches)
    shape = shape_of(cfg)
    base = CellPlan(
        name=run_name(cfg.model.alpha, cfg.model.resolution, cfg.model.variant),
        run_key=run_key(cfg),
        cell_key=run_key(replace(cfg, train=replace(cfg.train, seed=0))),
        mult_adds=probe.mult_adds.get(shape) if probe else None,
        epochs=t.epochs,
        steps_per_epoch=steps,
        batch=t.batch_size,
        eval_batches=batches,
    )
    learned = seen.match(cfg) if seen is not None else None
    startup = seen.startup() if seen is not None else None
    if learned is not None:
        # What this very cell took on this host (its export, if any, included), but with the
        # host's start-up: a cell that happened to be first in its launch also paid the
        # zygote's start, which the plan counts once per launch (``Plan.launch_s``).
        figures = learned.figures
        if startup is not None:
            figures = replace(figures, startup_s=min(figures.startup_s, startup.seconds))
        return replace(
            base,
            mult_adds=base.mult_adds if base.mult_adds is not None else learned.mult_adds,
            fixed_s=figures.fixed_s(t.epochs, batches),
            per_step_s=figures.per_step_s(t.epochs),
            source=SOURCE_FINISHED,
            source_when=learned.when,
        )
    if probe is None or shape not in probe.mult_adds:
        return base
    p = probe.at(shape, t.batch_size)
    figures = p.figures
    if startup is not None:
        figures = replace(figures, startup_s=startup.seconds)
    export = export_seconds(cfg, p, val_size)
    return replace(
        base,
        fixed_s=figures.fixed_s(t.epochs, batches) + (export or 0.0),
        per_step_s=figures.per_step_s(t.epochs),
        export_s=export,
        source=SOURCE_PROBE if p.measured else SOURCE_MODEL,
    )


def export_seconds(cfg: RunConfig, p: ShapeCosts, val_size: int | None) -> float | None:
    """What ``mnv1.export.cell`` adds to a cell, from the probe's measured conversion and runs:
    the conversions, the int8 model over the validation images (none counted when their number
    is unknown here), and the timed runs of both flatbuffers at 1 thread and at
    ``export.threads`` (counted at the 1-thread time: an upper bound). None when export is off."""
    e = cfg.export
    if not e.enabled:
        return None
    thread_counts = 1 if e.threads == 1 else 2
    runs = thread_counts * (e.warmup + e.repeats)
    return (
        p.export_convert_s
        + (val_size or 0) * p.export_int8_run_s
        + runs * (p.export_fp32_run_s + p.export_int8_run_s)
    )


def make_plan(
    cells: Sequence[RunConfig],
    probe: Probe | None,
    no_estimate: str | None = None,
    seen: HostHistory | None = None,
    launch_s: float = 0.0,
) -> Plan:
    """Every cell's plan: from the newest finished cell of this host with its timing identity
    where ``seen`` has one (``mnv1.sweep.learned``), else from the probe (with this host's
    start-up where ``seen`` knows it), else none; and ``launch_s``, paid once."""
    startup = seen.startup() if seen is not None else None
    return Plan(
        tuple(_cell_plan(c, probe, seen) for c in cells),
        probe,
        no_estimate=no_estimate,
        startup=startup,
        launch_s=launch_s,
    )


def launch_seconds(cells: Sequence[RunConfig], probe: Probe | None, zygote_up: bool) -> float:
    """What the launch pays once before its first cell trains: the zygote's start as the probe
    measured it, where the cells start warm and this process's zygote is not up (a launch whose
    probe was measured just now started it already; one with a cached probe starts it at its
    first cell)."""
    if probe is None or probe.zygote_start_s is None or zygote_up:
        return 0.0
    return probe.zygote_start_s if all(c.distribute.warm_workers for c in cells) else 0.0


def choose_steps(plan: Plan, target_s: float) -> Budget:
    """The largest steps per epoch (the same for every cell) whose plan fits ``target_s``.

    The target is per cell: the seeds of one cell (one ``cell_key``) count once, so each seed
    trains at the budget a single-seed sweep chooses. From ``2 × STEP_QUANTUM`` steps up the
    budget is rounded down to a multiple of ``STEP_QUANTUM``; below that it stays as computed
    (5 to 9); it is never below ``MIN_STEPS_PER_EPOCH``. ``fits`` says whether it fits at all.
    """
    once: dict[str, CellPlan] = {}
    for c in plan.cells:
        once.setdefault(c.cell_key or c.run_key, c)
    fixed = [c.fixed_s for c in once.values()]
    per_step = [c.per_step_s for c in once.values()]
    if any(v is None for v in fixed) or any(v is None for v in per_step):
        raise ValueError("a budget needs a probe with figures for every cell")
    fixed_total = sum(v for v in fixed if v is not None) + plan.launch_s
    step_total = sum(v for v in per_step if v is not None)
    room = target_s - fixed_total
    steps = math.floor(room / step_total) if step_total > 0 else MIN_STEPS_PER_EPOCH
    if steps >= 2 * STEP_QUANTUM:
        steps -= steps % STEP_QUANTUM
    chosen = max(MIN_STEPS_PER_EPOCH, steps)
    fits = fixed_total + chosen * step_total <= target_s
    seeds = max(sum(1 for c in plan.cells if (c.cell_key or c.run_key) == k) for k in once)
    return Budget(target_s, chosen, fits, fixed_total, step_total, seeds)


def with_steps(plan: Plan, budget: Budget) -> Plan:
    cells = tuple(
        CellPlan(**{**c.__dict__, "steps_per_epoch": budget.steps_per_epoch}) for c in plan.cells
    )
    return replace(plan, cells=cells, budget=budget)


# --- text -------------------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = round(max(0.0, seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def format_plan(plan: Plan) -> str:
    """The plan as printed by ``mnv1-plan`` and by ``mnv1-train -m`` before its first cell."""
    rows = [("cell", "mult-adds", "steps", "images", "estimate", "from")]
    for c in plan.cells:
        rows.append(
            (
                c.name,
                "?" if c.mult_adds is None else f"{c.mult_adds / 1e6:.1f}M",
                "?" if c.steps is None else f"{c.epochs}×{c.steps_per_epoch}",
                _count(c.images),
                duration(c.seconds),
                c.source or "-",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            [
                row[0].ljust(widths[0]),
                *(v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)),
            ]
        ).rstrip()

    out = [f"Plan: {len(plan.cells)} cell(s)", *("  " + line(r) for r in rows)]
    out.append(f"  total (cells, one after another): {duration(plan.total_s)}")
    if plan.launch_s > 0:
        out.append(
            f"  of which the warm workers' start (once, at the first cell): "
            f"{duration(plan.launch_s)}, as the probe measured it"
        )
    exports = [c.export_s for c in plan.cells if c.export_s is not None]
    if exports:
        out.append(
            f"  of which LiteRT export (export.enabled): {duration(min(exports))} to "
            f"{duration(max(exports))} per cell, {duration(sum(exports))} in all (measured in the "
            "probe: conversion and single-image runs)"
        )
    if plan.budget is not None:
        b = plan.budget
        first = plan.cells[0]
        per_cell = b.steps_per_epoch * first.epochs * first.batch
        per_seed = (
            f" per seed ({b.seeds} seeds per cell: about {b.seeds} × that in all)"
            if b.seeds > 1
            else ""
        )
        out.append(
            f"  budget: train.steps_per_epoch={b.steps_per_epoch} ({per_cell:,} images per cell), "
            f"chosen from the probe for a {duration(b.target_s)} target{per_seed}, "
            f"{b.verdict()}; pass train.steps_per_epoch={b.steps_per_epoch} to pin it on another "
            "machine"
        )
    out += _sources(plan)
    out.append(
        "  not estimated: dataset preparation, the final report; a relaunch skips FINISHED cells"
    )
    return "\n".join(out) + "\n"


def _sources(plan: Plan) -> list[str]:
    """Where the estimates come from: how many cells from each source, this host's start-up,
    the probe's own figures."""
    out = []
    counts = plan.sources()
    if counts:
        out.append("  figures: " + ", ".join(_SOURCE_TEXT[s](n, plan) for s, n in counts.items()))
    if plan.startup is not None and (SOURCE_PROBE in counts or SOURCE_MODEL in counts):
        st = plan.startup
        out.append(
            f"  start-up (process, imports) of the others: {st.seconds:.1f} s, the median of this "
            f"host's {st.cells} newest finished cell(s) (the newest ended {st.newest})"
        )
    p = plan.probe
    if p is None:
        out.append(f"  no estimate: {plan.no_estimate or 'the estimates need a probe'}")
        return out
    measured = ", ".join(
        f"{pt.shape} {f.step_s:.3f} s/step ({pt.batch / f.step_s:.1f} img/s), start-up "
        f"{f.startup_s:.1f} s, once per cell {f.once_s:.1f} s"
        for pt, f in ((pt, pt.figures) for pt in sorted(p.points, key=lambda pt: -pt.work))
        if f.step_s > 0
    )
    origin = "cached" if p.cached else "measured now"
    out.append(f"  probe on {p.host} ({origin}, {p.measured_at}): {measured}")
    return out


def _newest_finished(plan: Plan) -> str:
    return max(c.source_when for c in plan.cells if c.source == SOURCE_FINISHED)


_SOURCE_TEXT: dict[str, Callable[[int, Plan], str]] = {
    SOURCE_FINISHED: lambda n, plan: (
        f"{n} cell(s) from the same cell finished on this host (the newest ended "
        f"{_newest_finished(plan)})"
    ),
    SOURCE_PROBE: lambda n, plan: f"{n} from the probe of that shape",
    SOURCE_MODEL: lambda n, plan: f"{n} placed between the probed shapes by work per step",
}


# --- live progress ----------------------------------------------------------------------------


def progress_bar(done: int, total: int, width: int = 24) -> str:
    filled = 0 if total <= 0 else round(width * done / total)
    return "[" + "█" * filled + "░" * (width - filled) + "]"


def progress_line(
    done: int,
    total: int,
    elapsed_s: float,
    eta_s: float | None,
    name: str,
    val_top1: float | None,
    status: str = "FINISHED",
) -> str:
    """``5/16 done · 4 min 10 s elapsed · ETA 9 min 02 s · mnv1_a0.75_r160 val_top1 41.2%``."""
    top1 = "—" if val_top1 is None else f"{100 * val_top1:.1f}%"
    what = f"{name} val_top1 {top1}" + ("" if status == "FINISHED" else f" ({status})")
    return f"{done}/{total} done · {duration(elapsed_s)} elapsed · ETA {duration(eta_s)} · {what}"


@dataclass
class SweepProgress:
    """Counts finished cells of a sequential sweep and re-estimates what is left.

    The ETA is the remaining cells' estimates times the ratio of actual to estimated time over
    the cells trained so far (skipped cells cost nothing and say nothing about the estimate).
    """

    estimates: dict[str, float]
    """Estimated seconds by run key; cells without one count as the mean of the others."""
    total: int
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    last: float = field(default=0.0)
    done: list[str] = field(default_factory=list)
    actual_s: float = 0.0
    estimated_s: float = 0.0
    launch_s: float = 0.0
    """``Plan.launch_s``: the first cell trained also pays it."""

    def start(self) -> None:
        self.started = self.last = self.clock()

    def ratio(self) -> float:
        return self.actual_s / self.estimated_s if self.estimated_s > 0 else 1.0

    def _estimate(self, key: str) -> float | None:
        if key in self.estimates:
            return self.estimates[key]
        if self.estimates:
            return sum(self.estimates.values()) / len(self.estimates)
        return None

    def eta(self) -> float | None:
        left = self.total - len(self.done)
        pending = [k for k in self.estimates if k not in self.done]
        if left <= 0:
            return 0.0
        if not self.estimates:
            return None
        mean = sum(self.estimates.values()) / len(self.estimates)
        remaining = sum(self.estimates[k] for k in pending) + mean * max(0, left - len(pending))
        if self.estimated_s == 0:  # no cell trained yet: the first still pays the launch's part
            remaining += self.launch_s
        return remaining * self.ratio()

    def cell_done(
        self, key: str, name: str, action: str, status: str, val_top1: float | None
    ) -> str:
        now = self.clock()
        took, self.last = now - self.last, now
        self.done.append(key)
        estimate = self._estimate(key)
        if action != "skipped" and estimate is not None and estimate > 0:
            if self.estimated_s == 0:
                estimate += self.launch_s
            self.actual_s += took
            self.estimated_s += estimate
        return progress_line(
            len(self.done), self.total, now - self.started, self.eta(), name, val_top1, status
        )
