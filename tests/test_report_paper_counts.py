"""The one paper comparison: ``mnv1-costs`` and the report's paper tables show the same rows,
titles and verdicts, and a count off the print fails the same way in both."""

from __future__ import annotations

import dataclasses
import json

import pytest

import mnv1.costs
from mnv1 import paper
from mnv1.cli.costs import main
from mnv1.costs import ModelCosts, costs_for, table3_costs
from mnv1.report import paper_counts, paper_tables
from mnv1.report.fidelity import ERRATUM, FAIL, PASS

# Every row whose printed value is a documented erratum (mnv1.paper.ERRATA); the rest pass.
ERRATA_ROWS = {
    ("Table 2", "Conv 3x3"),
    ("Table 4", "Conv MobileNet"),
    ("Table 7", "1.0 MobileNet-160"),
    ("Table 9", "0.50 MobileNet-160"),
}


def _off_by_ten_million(
    alpha: float, resolution: int, num_classes: int = 1000, variant: str = "separable"
) -> ModelCosts:
    """The real count of 1.0 MobileNet-224 with 10M mult-adds too many; others as counted."""
    costs = costs_for(alpha, resolution, num_classes, variant)
    if (alpha, resolution, variant) == (1.0, 224, "separable"):
        return dataclasses.replace(costs, mult_adds=costs.mult_adds + 10_000_000)
    return costs


def test_costs_cli_and_report_tables_show_the_same_rows_titles_and_verdicts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--format", "json"]) == 0
    printed = {t["table"]: t for t in json.loads(capsys.readouterr().out)["tables"]}
    report = [paper_tables.table2(costs_for)[0], paper_tables.table3(table3_costs())[0]]
    report += [
        paper_tables.comparison_table(k, [], costs_for)[0] for k in paper_counts.MODEL_TABLES
    ]
    assert [t.title for t in report] == [f"{key}: {t['title']}" for key, t in printed.items()]
    assert list(printed) == list(paper_counts.TITLES)
    assert report[4].title == "Table 6: MobileNet Width Multiplier"  # as the paper prints it
    for table, (key, cli) in zip(report, printed.items(), strict=True):
        labels = [table.cell(i, table.columns[0].header) for i in range(len(table.rows))]
        assert labels == [row["row"] for row in cli["rows"]], key
        verdicts = [table.cell(i, "Counts") for i in range(len(table.rows))]
        assert verdicts == [row["status"] for row in cli["rows"]], key
        expected = [ERRATUM if (key, row["row"]) in ERRATA_ROWS else PASS for row in cli["rows"]]
        assert verdicts == expected, key


def test_an_erratum_reads_the_same_in_both() -> None:
    (counted,) = [
        c for c in paper_counts.model_rows("Table 7", costs_for) if c.row == "1.0 MobileNet-160"
    ]
    erratum = paper.erratum_for("Table 7", "1.0 MobileNet-160 mult-adds")
    assert erratum is not None
    assert (counted.mult_adds, counted.verdict, counted.params_check.verdict) == (
        290_675_200,
        ERRATUM,
        PASS,
    )
    assert counted.note == (
        "mult-adds: the paper prints 290, ours is 290.68 (prints as 291). " + erratum.explanation
    )
    table, _ = paper_tables.comparison_table("Table 7", [], costs_for)
    assert f"1.0 MobileNet-160, {counted.note}" in table.notes


def test_a_count_off_the_print_fails_in_the_comparison_and_the_report() -> None:
    rows = paper_counts.model_rows("Table 6", _off_by_ten_million)
    assert [(c.row, c.verdict) for c in rows] == [
        ("1.0 MobileNet-224", FAIL),
        ("0.75 MobileNet-224", PASS),
        ("0.5 MobileNet-224", PASS),
        ("0.25 MobileNet-224", PASS),
    ]
    wrong = rows[0]
    assert (wrong.mult_adds, wrong.mult_adds_check.verdict, wrong.params_check.verdict) == (
        578_740_352,
        FAIL,
        PASS,
    )
    assert wrong.note == "mult-adds: ours 578.74 vs printed 569, unexplained"
    assert wrong.cell == paper_counts.ModelCell(1.0, 224, "separable", 1000)
    assert wrong.keras_params == 4_253_864
    table, checks = paper_tables.comparison_table("Table 6", [], _off_by_ten_million)
    assert table.cell(0, "Counts") == FAIL
    assert [c.verdict for c in checks] == [FAIL] + [PASS] * 7


def test_costs_cli_exits_1_and_prints_fail_for_a_count_off_the_print(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The console script reads the cost model when it runs: a wrong count reaches it there.
    monkeypatch.setattr(mnv1.costs, "costs_for", _off_by_ten_million)
    assert main([]) == 1
    lines = capsys.readouterr().out.splitlines()
    wrong = [line for line in lines if line.startswith("| 1.0 MobileNet-224 |")]
    assert len(wrong) == 3  # Tables 4, 6 and 8 print the model
    for line in wrong:
        assert "| 578,740,352 | 579 | 569 |" in line
        assert "| FAIL | mult-adds: ours 578.74 vs printed 569, unexplained |" in line


def test_model_cell_is_none_for_rows_of_other_families() -> None:
    names = [r.model for r in paper.TABLES["Table 8"] if paper_counts.model_cell(r) is None]
    assert names == ["GoogleNet", "VGG 16"]
