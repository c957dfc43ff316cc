"""``mnv1-train`` refuses a bad configuration before any side effect: exit code 2, every problem
named with its key and value, no MLflow run, no output directory. Runs the real console script;
no TensorFlow starts, so each case takes a couple of seconds."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sweep_support import Workspace


def assert_untouched(ws: Workspace) -> None:
    """Nothing was created: no store, no Hydra output directory, no dataset, no checkpoint."""
    assert sorted(p.name for p in ws.root.iterdir()) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["model.alpha=-1"], ["model.alpha=-1.0: must be a number >= 0.03125"]),
        (["model.resolution=16"], ["model.resolution=16: must be an integer >= 32 (pixels"]),
        # Above the rate's ceiling: refused before any run, not in each cell's worker.
        (
            ["train.learning_rate=200"],
            ["train.learning_rate=200.0: must be a number in (0, 100] (all 4 cells)"],
        ),
        (["train.seed=-1"], ["train.seed=-1: must be an integer in [0, 4294967295]"]),
        (
            ["data=tfds", "data.name=no_such_dataset"],
            ["data.name='no_such_dataset' is not prepared", "data.download=false"],
        ),
        (
            ["distribute=cpu2", "train.batch_size=9"],
            [
                "train.batch_size=9: the global batch must divide evenly by the 2 replicas of "
                "distribute.cpu_replicas=2"
            ],
        ),
    ],
)
def test_bad_override_in_a_sweep(ws: Workspace, overrides: list[str], expected: list[str]) -> None:
    done = ws.train("-m", "experiment=smoke", *overrides)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "nothing was started" in done.stderr
    for text in expected:
        assert text in done.stderr
    assert_untouched(ws)


def test_unknown_study_lists_the_known_ones(ws: Workspace) -> None:
    done = ws.train("-m", "experiment=nope")
    assert done.returncode == 2
    assert (
        "experiment='nope': no such study; known studies: demo, smoke, table4, table5, table6, "
        "table7, table8_9, tradeoff16"
    ) in done.stderr
    assert_untouched(ws)


def test_one_bad_value_in_a_16_cell_grid(ws: Workspace) -> None:
    done = ws.train("-m", "experiment=demo", "model.alpha=1.0,0.75,0.5,-0.25")
    assert done.returncode == 2
    assert (
        "model.alpha=-0.25: must be a number >= 0.03125 (1/32: the first layer has 32·α channels; "
        "the paper: 1, 0.75, 0.5, 0.25) (in 4 of 16 cells: mnv1_a-0.25_r224, mnv1_a-0.25_r192, "
        "mnv1_a-0.25_r160, mnv1_a-0.25_r128)"
    ) in done.stderr
    assert_untouched(ws)


def test_every_problem_is_reported_in_one_go(ws: Workspace) -> None:
    done = ws.train(
        "-m",
        "experiment=smoke",
        "model.alpha=-1",
        "model.resolution=16",
        "distribute=cpu2",
        "train.batch_size=9",
        "train.epochs=0",
    )
    assert done.returncode == 2
    problems = [line for line in done.stderr.splitlines() if line.startswith("  - ")]
    keys = [line[4:].split(":")[0] for line in problems]
    assert keys == [
        "model.alpha=-1.0",
        "model.resolution=16",
        "train.epochs=0",
        "train.batch_size=9",
    ]
    assert "the configuration has 4 problem(s)" in done.stderr
    assert_untouched(ws)


def test_a_typo_does_not_hide_the_other_problems(ws: Workspace) -> None:
    done = ws.train("-m", "experiment=smoke", "model.alhpa=0.5", "data=nope", "model.alpha=-1")
    assert done.returncode == 2
    problems = [line[4:] for line in done.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 3
    # Hydra resolves config groups before values, so the group problem comes first.
    assert problems[0] == "data=nope: no such option; known: folder, imagenet, synthetic, tfds"
    assert problems[1].startswith("Could not override 'model.alhpa'")
    assert problems[2].startswith("model.alpha=-1.0: must be a number >= 0.03125")
    assert_untouched(ws)


def test_typing_and_composition_errors(ws: Workspace) -> None:
    done = ws.train("-m", "experiment=smoke", "model.resolution=32,abc")
    assert done.returncode == 2
    assert (
        "model.resolution=abc: Value 'abc' of type 'str' could not be converted to Integer "
        "(in 2 of 4 cells:"
    ) in done.stderr
    done = ws.train("model.alhpa=0.5")
    assert done.returncode == 2 and "Could not override 'model.alhpa'" in done.stderr
    done = ws.train("data=nope")
    assert done.returncode == 2
    assert "data=nope: no such option; known: folder, imagenet, synthetic, tfds" in done.stderr
    # A grid without -m is ambiguous, as Hydra says; nothing runs either.
    done = ws.train("experiment=smoke", "model.alpha=0.25,0.5")
    assert done.returncode == 2 and "To sweep over it, add --multirun" in done.stderr
    assert_untouched(ws)


# mnv1-train as on a machine without the cluster extras: the plugins' packages cannot be imported.
WITHOUT_CLUSTER_PLUGINS = (
    "import sys\n"
    "for name in ('hydra_plugins.hydra_submitit_launcher', 'hydra_plugins.hydra_ray_launcher'):\n"
    "    sys.modules[name] = None\n"
    "from mnv1.cli.train import main\n"
    "main()\n"
)


def test_cluster_launcher_without_its_plugin_names_the_extra(ws: Workspace) -> None:
    for launcher, extra in (("slurm", "slurm"), ("ray_cluster", "ray")):
        args = ["-m", "experiment=smoke", f"hydra/launcher={launcher}"]
        done = subprocess.run(
            [sys.executable, "-c", WITHOUT_CLUSTER_PLUGINS, *args],
            cwd=ws.root,
            env=ws.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert f"pip install 'mnv1[{extra}]'" in done.stderr
    assert_untouched(ws)


def test_print_the_config_without_running(ws: Workspace) -> None:
    done = ws.train("--cfg", "job", "experiment=smoke")
    assert done.returncode == 0, done.stderr
    assert "study: smoke" in done.stdout and "alpha: 0.25" in done.stdout
    assert_untouched(ws)


def test_the_cli_validates_without_tensorflow_or_mlflow() -> None:
    """What runs before validation imports neither (they start threads, devices and files)."""
    code = (
        "import sys, mnv1.cli.train; "
        "heavy = [m for m in ('tensorflow', 'keras', 'mlflow') if m in sys.modules]; "
        "sys.exit(str(heavy) if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
