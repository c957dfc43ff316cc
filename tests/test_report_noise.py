"""Seeds in the report: mean ± sd per cell, error bars, bootstrap intervals, one-seed noise, and
``mnv1-report --compare``; plus what the report says about its data and its analytic checks.

Runs are built by hand (no store): every number has one right answer, computed here with numpy
or scipy independently of ``mnv1.report.noise``.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from matplotlib.collections import LineCollection
from mnv1.tracking import schema
from mnv1.tracking.queries import CellRun, GridCell, SweepParent, SweepRuns

from mnv1 import paper
from mnv1.report import noise
from mnv1.report.build import ReportResult, assemble
from mnv1.report.compare import NOT_DISTINGUISHABLE, compare
from mnv1.report.context import SYNTHETIC_DESIGN
from mnv1.report.document import TableBlock
from mnv1.report.fidelity import ERRATUM, FAIL, PASS, Fidelity, check_printed, spearman
from mnv1.report.figures import ERRORBAR_GID, OURS_GID
from mnv1.report.html import to_html
from mnv1.report.records import cell_records

# Exact paper-convention mult-adds at the 1000-class head, as runs log them.
MULT_ADDS = {
    (1.0, 224): 568_740_352,
    (0.75, 192): 239_273_472,
    (0.5, 160): 76_524_800,
    (0.5, 192): 109_970_432,
    (0.25, 128): 13_570_048,
}
PARAMS = {1.0: 4_209_088, 0.75: 2_568_144, 0.5: 1_319_648, 0.25: 463_600}
# Top-1 (fractions, as Keras logs them) of three seeds per cell. 0.5-160 and 0.5-192 overlap.
SEEDS = {
    (1.0, 224): (0.612, 0.574, 0.650),
    (0.75, 192): (0.561, 0.533, 0.590),
    (0.5, 160): (0.470, 0.420, 0.515),
    (0.5, 192): (0.492, 0.447, 0.530),
    (0.25, 128): (0.301, 0.322, 0.287),
}
DATA_TAGS = {
    schema.TAG_DATA_NAME: "mnv1_synthetic/s0_tr1680_va256_c10_px256",
    schema.TAG_DATA_VERSION: "1.0.0",
    schema.TAG_DATA_NUM_CLASSES: "10",
    f"{schema.TAG_DATA_SPLIT_PREFIX}train": "1680",
    f"{schema.TAG_DATA_SPLIT_PREFIX}validation": "256",
}
BUDGET_TAGS = {
    schema.TAG_TOTAL_STEPS: "105",
    schema.TAG_STEPS_PER_EPOCH: "35",
    schema.TAG_PER_REPLICA_BATCH: "16",
    schema.TAG_REPLICAS: "1",
}


def _name(alpha: float, resolution: int) -> str:
    from mnv1.config import run_name

    return run_name(alpha, resolution)


def _sweep(seeds: int, data_tags: dict[str, str] | None = None) -> SweepRuns:
    """A sweep of the cells above with ``seeds`` seeds each (the first ``seeds`` values)."""
    grid, runs, clock = [], [], 0
    for (alpha, res), values in SEEDS.items():
        for seed in range(seeds):
            key = f"k-{alpha}-{res}-{seed}"
            grid.append(GridCell(_name(alpha, res), alpha, res, "separable", key, seed))
            clock += 1
            runs.append(
                CellRun(
                    run_id=f"run-{alpha}-{res}-s{seed}",
                    run_name=f"{_name(alpha, res)}_s{seed}",
                    status="FINISHED",
                    start_time=clock,
                    end_time=clock,
                    parent_run_id="p",
                    run_key=key,
                    sweep_key="s",
                    variant="separable",
                    metrics={
                        schema.METRIC_ALPHA: alpha,
                        schema.METRIC_RESOLUTION: res,
                        schema.METRIC_MULT_ADDS: MULT_ADDS[alpha, res],
                        schema.METRIC_PARAMS: PARAMS[alpha],
                        schema.METRIC_VAL_TOP1: values[seed],
                        schema.METRIC_VAL_EXAMPLES: 256,
                    },
                    tags={
                        schema.TAG_CELL: _name(alpha, res),
                        schema.TAG_SEED: str(seed),
                        **BUDGET_TAGS,
                    },
                )
            )
    parent = SweepParent(
        "p", "0", "s", "demo", "FINISHED", 0, None, tuple(grid), dict(data_tags or DATA_TAGS)
    )
    return SweepRuns("demo", "sqlite:///x.db", parent, tuple(runs))


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return assemble(_sweep(3), tmp_path_factory.mktemp("three"))


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> ReportResult:
    return assemble(_sweep(1), tmp_path_factory.mktemp("one"))


def _pct(values: tuple[float, ...]) -> list[float]:
    return [100 * v for v in values]


def test_records_group_seeds_into_one_cell_with_mean_and_sd() -> None:
    records = cell_records(_sweep(3))
    assert [r.name for r in records] == [_name(a, r) for a, r in SEEDS]
    first = records[0]
    values = _pct(SEEDS[1.0, 224])
    assert first.status == "finished" and first.seeds == 3 and first.run_id is None
    assert [r.seed for r in first.runs] == [0, 1, 2]
    assert first.top1 == pytest.approx(statistics.fmean(values))
    assert first.top1_sd == pytest.approx(float(np.std(values, ddof=1)))


def test_grid_shows_mean_plus_minus_sd(three: ReportResult) -> None:
    matrix = three.tables["grid_top1"]
    assert matrix.title.endswith("mean ± sd over seeds")
    row = [r[0] for r in matrix.formatted()].index("1.0")
    column = matrix.headers.index("224")
    values = _pct(SEEDS[1.0, 224])
    expected = f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"
    assert matrix.formatted()[row][column] == expected
    assert expected in (three.out_dir / "report.md").read_text()
    grid = three.tables["grid"]
    assert grid.cell(0, "Seeds") == "3/3"
    assert grid.cell(0, "Top-1 sd") == f"{np.std(values, ddof=1):.2f}"
    assert len(three.tables["grid_runs"].rows) == 15
    t6 = three.tables["table6"]
    assert t6.cell(0, "Top-1 ours") == f"{np.mean(values):.1f}"
    assert t6.cell(0, "Top-1 ours sd") == f"{np.std(values, ddof=1):.1f}"
    assert t6.cell(0, "Seeds") == "3/3"


def test_figures_carry_error_bars_of_one_sd(three: ReportResult) -> None:
    for name in ("figure4", "figure5"):
        (ax,) = three.figures[name].axes
        bars = [c for c in ax.collections if c.get_gid() == ERRORBAR_GID]
        assert bars and all(isinstance(c, LineCollection) for c in bars)
        segments = sorted(
            (float(s[0][0]), float(s[0][1]), float(s[1][1])) for c in bars for s in c.get_segments()
        )
        expected = []
        for (alpha, res), values in SEEDS.items():
            x = MULT_ADDS[alpha, res] / 1e6 if name == "figure4" else PARAMS[alpha] / 1e6
            mean, sd = np.mean(_pct(values)), np.std(_pct(values), ddof=1)
            expected.append((x, mean - sd, mean + sd))
        np.testing.assert_allclose(np.array(segments), np.array(sorted(expected)), rtol=1e-9)
        ours = [p for c in ax.collections if c.get_gid() == OURS_GID for p in c.get_offsets()]
        assert len(ours) == 5


def test_fidelity_gives_bootstrap_intervals_over_seeds(three: ReportResult) -> None:
    fid = three.fidelity
    assert fid.noise.seeds == (3,)
    iv = fid.noise.spearman_interval
    slope_iv = fid.noise.slope_interval
    assert iv is not None and slope_iv is not None
    # Recomputed here: the same draws (one seed per cell, fixed generator), scipy's ρ.
    cells = list(SEEDS)
    rng = np.random.default_rng(noise.BOOTSTRAP_SEED)
    picks = [rng.integers(0, 3, size=noise.BOOTSTRAP_REPLICATES) for _ in cells]
    slim = [paper.slim_row(*c).top1_2017 for c in cells]
    xs = np.log10([MULT_ADDS[c] / 1e6 for c in cells])
    rhos, slopes = [], []
    for b in range(noise.BOOTSTRAP_REPLICATES):
        ys = [100 * SEEDS[c][int(p[b])] for c, p in zip(cells, picks, strict=True)]
        rhos.append(scipy.stats.spearmanr(ys, slim).statistic)
        slopes.append(np.polyfit(xs, ys, 1)[0])
    assert (iv.low, iv.high) == pytest.approx(tuple(np.percentile(rhos, [2.5, 97.5])))
    assert (slope_iv.low, slope_iv.high) == pytest.approx(tuple(np.percentile(slopes, [2.5, 97.5])))
    assert fid.fit_ours is not None and slope_iv.low <= fid.fit_ours.slope <= slope_iv.high
    summary = three.tables["fidelity"]
    assert summary.cell(1, "95% interval") == iv.text("+.2f")
    assert summary.cell(2, "95% interval") == slope_iv.text("+.1f")
    groups = [_pct(v) for v in SEEDS.values()]
    pooled = math.sqrt(sum(np.var(g, ddof=1) * 2 for g in groups) / 10)
    assert fid.noise.seed_sd == pytest.approx((pooled, 10))
    assert f"seed-to-seed sd of top-1 {pooled:.2f} pp" in summary.cell(5, "Value")
    # The same sweep reports the same interval: the bootstrap's generator is seeded.
    again = assemble(_sweep(3), three.out_dir / "again").fidelity.noise.spearman_interval
    assert again == iv


def test_one_seed_says_so_and_gives_the_residual_spread(one: ReportResult) -> None:
    fid = one.fidelity
    assert fid.noise.seeds == (1,)
    assert fid.noise.spearman_interval is None and fid.noise.slope_interval is None
    xs = np.log10([MULT_ADDS[c] / 1e6 for c in SEEDS])
    ys = np.array([100 * v[0] for v in SEEDS.values()])
    slope, intercept = np.polyfit(xs, ys, 1)
    expected = math.sqrt(float(np.sum((ys - (intercept + slope * xs)) ** 2)) / (len(ys) - 2))
    assert fid.noise.residual_sd == pytest.approx(expected)
    line = "one seed per cell: no seed-to-seed spread measured; residual sd around our "
    assert fid.noise_text().startswith(line)
    assert f"{expected:.2f} pp over 5 cells" in fid.noise_text()
    markdown = (one.out_dir / "report.md").read_text()
    grid_section = markdown.split("## The α × ρ grid")[1]
    assert grid_section.lstrip().startswith("Noise: one seed per cell")
    assert one.tables["grid_top1"].title.endswith("one seed per cell")
    assert one.tables["fidelity"].cell(1, "95% interval") == "—"
    (ax,) = one.figures["figure4"].axes
    assert [c for c in ax.collections if c.get_gid() == ERRORBAR_GID] == []


def test_compare_overlapping_cells_is_not_distinguishable() -> None:
    records = cell_records(_sweep(3))
    result = compare(records, "mnv1_a0.5_r192", "mnv1_a0.5_r160")
    a, b = _pct(SEEDS[0.5, 192]), _pct(SEEDS[0.5, 160])
    welch = scipy.stats.ttest_ind(a, b, equal_var=False)
    df = welch.df
    half = scipy.stats.t.ppf(0.975, math.floor(df)) * math.sqrt(
        np.var(a, ddof=1) / 3 + np.var(b, ddof=1) / 3
    )
    diff = np.mean(a) - np.mean(b)
    iv = result.difference.interval
    assert iv is not None
    assert (iv.low, iv.high) == pytest.approx((diff - half, diff + half), abs=2e-3)
    assert result.difference.distinguishable is False
    text = result.text()
    assert f"difference A - B in val_top1: {diff:+.2f} pp" in text
    assert f"{NOT_DISTINGUISHABLE}: the interval covers zero" in text


def test_compare_far_apart_cells_prints_the_difference_and_its_interval() -> None:
    records = cell_records(_sweep(3))
    result = compare(records, "mnv1_a1.0_r224", "mnv1_a0.25_r128")
    diff = np.mean(_pct(SEEDS[1.0, 224])) - np.mean(_pct(SEEDS[0.25, 128]))
    iv = result.difference.interval
    assert iv is not None and iv.low > 0 and iv.low < diff < iv.high
    text = result.text()
    assert f"{diff:+.2f} pp, 95% interval {iv.text('+.2f')} pp (Welch t, df" in text
    assert "distinguishable: the interval excludes zero (A is higher)" in text
    assert NOT_DISTINGUISHABLE not in text


def test_compare_runs_by_id_uses_the_pooled_spread_and_names_bad_input() -> None:
    records = cell_records(_sweep(3))
    result = compare(records, "run-1.0-224-s0", "run-1.0-224-s1")
    assert result.a.values == (pytest.approx(61.2),)
    assert "pooled seed-to-seed spread" in result.difference.method
    assert result.difference.distinguishable is False
    with pytest.raises(ValueError, match=r"'nope' is no cell name or run id.*mnv1_a1.0_r224"):
        compare(records, "nope", "mnv1_a1.0_r224")
    one = cell_records(_sweep(1))
    single = compare(one, "mnv1_a1.0_r224", "mnv1_a0.25_r128")
    assert "residual spread around the log-linear fit" in single.difference.method


def test_welch_and_t_quantiles_match_scipy() -> None:
    for df in (1, 2, 3, 7, 30):
        assert noise.t975(df) == pytest.approx(scipy.stats.t.ppf(0.975, df), abs=1e-3)
    assert noise.t975(3.9) == noise.t975(3) and noise.t975(200) == noise.t975(30)
    with pytest.raises(ValueError, match=r"df=0\.5"):
        noise.t975(0.5)
    d = noise.difference([1.0, 2.0], [1.0])
    assert d.interval is None and d.distinguishable is None


def test_bootstrap_needs_a_second_seed_somewhere() -> None:
    assert noise.bootstrap_one_seed_per_cell([[1.0], [2.0]], lambda ys: ys[0]) is None
    iv = noise.bootstrap_one_seed_per_cell([[1.0, 3.0], [2.0]], lambda ys: ys[0] - ys[1])
    assert iv is not None and (iv.low, iv.high) == (-1.0, 1.0)
    with pytest.raises(ValueError, match="at least one finished seed"):
        noise.bootstrap_one_seed_per_cell([[1.0], []], lambda ys: ys[0])
    assert spearman([1.0, 2.0], [2.0, 1.0]) == pytest.approx(-1.0)


def test_report_states_its_data_budget_and_a_shape_comparison(three: ReportResult) -> None:
    markdown = (three.out_dir / "report.md").read_text()
    head = markdown.split("## Fidelity summary")[0]
    assert "**Data**: `mnv1_synthetic/s0_tr1680_va256_c10_px256` 1.0.0, 10 classes" in head
    assert "train 1,680, validation 256" in head
    assert "3 epochs × 35 steps × batch 16 = 1,680 training images" in head
    assert "1,680 training images, top-1 on 256 validation images" in head
    assert "shape comparison only (sign of the slope, rank order): not trained on ImageNet" in head
    assert SYNTHETIC_DESIGN in head
    summary = three.tables["fidelity"]
    assert "shape comparison" in summary.cell(1, "Measure")
    assert three.fidelity.to_dict()["comparison"] == "shape"
    caption = "Trained on mnv1_synthetic/s0_tr1680_va256_c10_px256 with 1,680 training images"
    assert markdown.count(caption) >= 4  # both figures: image alt text and caption
    for name in ("figure4", "figure5"):
        title = three.figures[name].axes[0].get_title()
        assert title.endswith("\nmnv1_synthetic, 1,680 training images, 3 seeds per cell")


def test_imagenet_is_an_accuracy_comparison(tmp_path: Path) -> None:
    tags = {**DATA_TAGS, schema.TAG_DATA_NAME: "imagenet2012"}
    result = assemble(_sweep(1, tags), tmp_path)
    assert "shape comparison" not in result.tables["fidelity"].cell(1, "Measure")
    assert SYNTHETIC_DESIGN not in (tmp_path / "report.md").read_text()


def test_an_unexplained_analytic_value_fails_and_shows_red() -> None:
    # 300 matches neither the printed 290 nor the erratum's corrected 291.
    wrong = check_printed("Table 7", "1.0 MobileNet-160 mult-adds", 300.0, 290.0)
    assert (wrong.verdict, wrong.outcome) == (FAIL, "differs, unexplained")
    # A value no erratum covers at all.
    stray = check_printed("Table 6", "0.5 MobileNet-224 mult-adds", 151.2, 149.0)
    assert (stray.verdict, stray.erratum) == (FAIL, None)
    # Documented and derived: the third outcome.
    derived = check_printed("Table 7", "1.0 MobileNet-160 mult-adds", 290.6752, 290.0)
    assert derived.verdict == ERRATUM
    assert derived.outcome == "documented erratum, derived from the counting convention"
    # TF-slim's 150 for 0.50-224 is listed, but underived: it never excuses the difference.
    slim = check_printed("TF-slim", "MobileNet_v1_0.50_224 mult-adds", 149.497088, 150.0)
    assert slim.verdict == FAIL and slim.known is not None and slim.erratum is None

    fid = Fidelity(
        checks=(check_printed("Table 6", "1.0 MobileNet-224 mult-adds", 568.74, 569.0), stray),
        release="2017",
        spearman=None,
        spearman_n=0,
        fit_ours=None,
        fit_reference_same=None,
        fit_reference_all=None,
    )
    assert (fid.count(PASS), fid.count(FAIL), fid.analytic_ok) == (1, 1, False)
    assert fid.summary_table().cell(0, "Value").startswith("FAIL: 1 match, 0 documented")
    html = to_html("t", [TableBlock(fid.checks_table()), TableBlock(fid.summary_table())])
    assert '<td class="FAIL">FAIL</td>' in html
    assert '<tr class="failed"><td>Table 6</td><td>0.5 MobileNet-224 mult-adds</td>' in html
    assert '<td class="FAIL">FAIL: 1 match' in html
    assert "<tr><td>Table 6</td><td>1.0 MobileNet-224 mult-adds</td>" in html  # pass: not red


def test_errata_derive_their_correction_and_the_underived_are_not_errata() -> None:
    for erratum in paper.ERRATA:
        assert erratum.basis in paper.ERRATUM_BASES
        text = erratum.explanation.casefold()
        assert "unexplained" not in text and "typo" not in text
    for item in ("MobileNet_v1_0.50_224 mult-adds", "MobileNet_v1_0.25_192 mult-adds", "params"):
        assert paper.erratum_for("TF-slim", item) is None
        assert paper.unexplained_for("TF-slim", item) is not None
    assert paper.erratum_for("Keras docs", "1.0 MobileNet mult-adds") is None
    with pytest.raises(ValueError, match=r"basis=.a hunch.*architecture, counting convention"):
        paper.Erratum("Table 6", "x", "1", "2", "because", "a hunch")
