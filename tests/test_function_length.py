"""No function in ``mnv1/`` or ``tracking/`` is over 80 lines: each does one job, short enough to
read and test alone. Measured on the AST: ``end_lineno - lineno + 1`` of every function and
method, nested ones as their own entries (the outer one counts its whole body)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT = 80


def function_lengths(*roots: Path) -> list[tuple[int, str]]:
    """``(lines, "path:qualified.name")`` of every function under ``roots``, longest first."""
    found: list[tuple[int, str]] = []
    for root in roots:
        assert root.is_dir(), root
        for path in sorted(root.rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            where = path.relative_to(REPO)
            found += [(length, f"{where}:{name}") for name, length in _functions(tree, "")]
    return sorted(found, key=lambda item: (-item[0], item[1]))


def _functions(node: ast.AST, prefix: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{child.name}"
            if not isinstance(child, ast.ClassDef):
                assert child.end_lineno is not None
                out.append((name, child.end_lineno - child.lineno + 1))
            out += _functions(child, f"{name}.")
        else:
            out += _functions(child, prefix)
    return out


def test_no_function_in_mnv1_or_tracking_is_over_80_lines() -> None:
    lengths = function_lengths(REPO / "mnv1", REPO / "tracking")
    # Both trees were read: an emptied or moved root would otherwise pass with nothing scanned.
    assert any(where.startswith("mnv1/training/run.py:") for _, where in lengths)
    assert any(where.startswith("tracking/") for _, where in lengths)
    too_long = [f"{where} is {lines} lines" for lines, where in lengths if lines > LIMIT]
    assert not too_long, f"over {LIMIT} lines: " + "; ".join(too_long)


def test_the_scan_counts_nested_functions_and_methods_on_their_own(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "def outer():\n"  # 1
        "    def inner():\n"  # 2
        "        return 1\n"  # 3
        "    return inner\n"  # 4
        "\n"
        "class Box:\n"
        "    async def method(self):\n"  # 7
        "        if True:\n"
        "            pass\n"  # 9
    )
    tree = ast.parse(source.read_text())
    assert _functions(tree, "") == [("outer", 4), ("outer.inner", 2), ("Box.method", 3)]
