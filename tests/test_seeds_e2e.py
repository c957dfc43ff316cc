"""End to end: one smoke cell swept over three seeds with Hydra's own syntax, through the real
``mnv1-train``, then its report and ``mnv1-report --compare`` read back from the store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mnv1.tracking import schema
from sweep_support import Workspace

from mnv1.cli.report import main as report_main

CELL = "mnv1_a0.25_r32"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_one_cell_three_seeds_three_runs_and_mean_sd_in_the_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path)
    done = ws.train(
        "-m", "experiment=smoke", "model.alpha=0.25", "model.resolution=32", "train.seed=range(3)"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all cells FINISHED" in done.stdout

    [parent] = ws.parents()
    grid = json.loads(ws.text(parent, "grid.json"))["cells"]
    assert [(c["name"], c["seed"]) for c in grid] == [(CELL, s) for s in range(3)]
    children = ws.children()
    assert sorted(children) == [f"{CELL}_s{s}" for s in range(3)]
    keys = set()
    for seed in range(3):
        run = children[f"{CELL}_s{seed}"]
        tags = run.data.tags
        assert run.info.status == "FINISHED"
        assert tags[schema.TAG_CELL] == CELL and tags[schema.TAG_SEED] == str(seed)
        assert run.data.params["train.seed"] == str(seed)
        assert tags[schema.TAG_DATA_ORDER_SEED] == tags[schema.TAG_INIT_SEED] == str(seed)
        assert tags[schema.TAG_OP_DETERMINISM] == "off"
        assert tags[schema.TAG_DEVICE_KIND].startswith("CPU: ")
        keys.add(tags[schema.TAG_RUN_KEY])
    assert len(keys) == 3

    # The sweep's own report: one cell in the grid, shown as mean ± sd of its three seeds.
    markdown = (ws.root / "reports" / "smoke" / "report.md").read_text()
    matrix = markdown.split("α × ρ grid: validation top-1 (%), mean ± sd over seeds")[1]
    row = next(line for line in matrix.splitlines() if line.startswith("| 0.25 |"))
    assert re.fullmatch(r"\| 0\.25 \| \d+\.\d\d ± \d+\.\d\d \|", row), row
    assert f"| {CELL} | 0.25 | 32 | separable | default | finished |" in markdown
    assert "| 3/3 |" in markdown

    # Two seeds of the one cell, by run id: the pooled spread of its three seeds decides.
    ids = [children[f"{CELL}_s{s}"].info.run_id for s in (0, 1)]
    argv = ["--experiment", "smoke", "--tracking-uri", ws.uri, "--compare", *ids]
    assert report_main(argv) == 0
    out = capsys.readouterr().out
    assert f"A: run {ids[0]} ({CELL}, seed 0)" in out
    assert "difference A - B in val_top1" in out
