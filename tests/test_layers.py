"""The layer contract (``.importlinter``, checked by ``.ci/layers`` in ``make test``): the tree
keeps it, and a copy of the tree with one upward import added breaks it, naming that import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tree_support import REPO, copy_sources

# What .ci/layers reads: the package folders, the contract, and the install layout (pyproject).
TREE = ("mnv1", "tracking", "conf", "experiments", "pyproject.toml", ".importlinter", ".ci")


def lint_layers(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(root / ".ci" / "layers"), sys.executable],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def add_import(module: Path, line: str) -> None:
    module.write_text(module.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


def test_the_tree_keeps_the_layer_contract() -> None:
    done = lint_layers(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cli > launchers > hydra_app > bench > tune > sweep > training > shared KEPT" in (
        done.stdout
    )
    # tracking/ is seen under its installed name (its own imports are checked too).
    assert "Contracts: 1 kept, 0 broken." in done.stdout


def test_an_upward_import_breaks_the_contract_and_is_named(tmp_path: Path) -> None:
    root = copy_sources(TREE, tmp_path / "tree")
    # One run reaching up into many runs (training/run.py imported sweep/run_key.py once), and
    # the tracking layer (installed as mnv1.tracking from tracking/) reaching up into training.
    add_import(root / "mnv1" / "training" / "checkpoint.py", "from mnv1.sweep import plan")
    add_import(root / "tracking" / "runs.py", "import mnv1.training.worker")
    done = lint_layers(root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Contracts: 0 kept, 1 broken." in done.stdout
    assert "mnv1.training is not allowed to import mnv1.sweep:" in done.stdout
    assert "- mnv1.training.checkpoint -> mnv1.sweep.plan (l." in done.stdout
    assert "mnv1.tracking is not allowed to import mnv1.training:" in done.stdout
    assert "- mnv1.tracking.runs -> mnv1.training.worker (l." in done.stdout


def test_a_module_in_no_layer_breaks_the_contract(tmp_path: Path) -> None:
    # The contract is exhaustive: a new top-level module must be placed before it may exist.
    root = copy_sources(TREE, tmp_path / "tree")
    (root / "mnv1" / "helpers.py").write_text("VALUE = 1\n", encoding="utf-8")
    done = lint_layers(root)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "The following modules are not listed as layers:\n\n- mnv1.helpers\n" in done.stdout
