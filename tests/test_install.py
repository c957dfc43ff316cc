"""A non-editable install of this checkout into a fresh virtualenv puts nothing generic on the path.

``tracking/``, ``conf/`` and ``experiments/`` are top-level folders of the repository but install as
``mnv1.tracking``, ``mnv1.conf`` and ``mnv1.experiments`` (pyproject.toml), so after ``pip install
.`` ``import tracking`` fails, while the console scripts find their Hydra configs and studies
inside the installed package from any directory.

The fresh virtualenv has no pip and no dependencies of its own: a ``.pth`` file lends it the
test run's site-packages for TensorFlow, Hydra and MLflow (installing those again would take
minutes), and this interpreter's pip installs the checkout into it with ``--python``. The
checkout's files are copied first, so the build leaves nothing (``build/``, ``*.egg-info``) in
the working tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from tree_support import copy_sources

# What the package is built from (pyproject.toml's packages, package-dir and readme).
SOURCES = ("pyproject.toml", "README.md", "mnv1", "tracking", "conf", "experiments")


def _run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
def test_a_fresh_non_editable_install_imports_no_generic_package(tmp_path: Path) -> None:
    source = copy_sources(SOURCES, tmp_path / "src")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            tmp_path,
            dict(os.environ),
        ).stdout.strip()
    )
    lent = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "dependencies.pth").write_text("\n".join(sorted(lent)) + "\n")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
    installed = _run([*pip, "--no-deps", str(source)], tmp_path, env)
    assert installed.returncode == 0, installed.stdout[-3000:]

    elsewhere = tmp_path / "elsewhere"  # not the checkout, nothing of it on the path
    elsewhere.mkdir()
    for generic in ("tracking", "conf", "experiments"):
        found = _run([str(python), "-c", f"import {generic}"], elsewhere, env)
        assert found.returncode == 1, found.stdout
        assert f"ModuleNotFoundError: No module named '{generic}'" in found.stdout
    where = _run(
        [
            str(python),
            "-c",
            "import mnv1.tracking.schema, mnv1.conf, mnv1.experiments, mnv1; print(mnv1.__file__)",
        ],
        elsewhere,
        env,
    )
    assert where.returncode == 0, where.stdout
    assert Path(where.stdout.strip()).is_relative_to(site)  # the installed copy, not the checkout
    # The Hydra application and the launchers install as packages of their own, and the launcher
    # shims where Hydra's plugin scan looks (the hydra_plugins namespace).
    for module in ("mnv1/hydra_app/sweeper.py", "mnv1/launchers/slurm.py", "mnv1/launchers/ray.py"):
        assert (site / module).is_file(), module
    assert sorted(p.name for p in (site / "hydra_plugins" / "mnv1_launchers").glob("*.py")) == [
        "__init__.py",
        "ray.py",
        "slurm.py",
    ]

    bin_dir = venv / "bin"
    job = _run([str(bin_dir / "mnv1-train"), "--cfg", "job", "experiment=demo"], elsewhere, env)
    assert job.returncode == 0, job.stdout
    assert "study: demo" in job.stdout and "resolution: 224" in job.stdout
    costs = _run(
        [str(bin_dir / "mnv1-costs"), "--alpha", "0.25", "--resolution", "32"], elsewhere, env
    )
    assert costs.returncode == 0, costs.stdout
    assert "| **total** |  |  |  | **463,600** | **475,544** |" in costs.stdout
    report = _run([str(bin_dir / "mnv1-report"), "--help"], elsewhere, env)
    assert report.returncode == 0, report.stdout
    assert report.stdout.startswith("usage: mnv1-report")
    assert sorted(p.name for p in elsewhere.iterdir()) == []  # --cfg ran nothing
