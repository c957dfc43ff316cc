"""The README's commands, as a new user types them: a renamed console script, flag, config key or
``make`` target fails here, not on a user's machine.

Every console script runs from a directory outside the checkout, in a new shell whose only setup
is the line the README gives (``. .venv/bin/activate``), with ``--help`` (nothing is trained,
probed or served). Each command of README.md's "What is in the box" table must name an installed
script; its flags, and those of every other ``mnv1-…`` command README.md and BENCHMARKS.md show,
must be in that script's help; its overrides must name config groups and keys that exist. Each
``make`` target README.md names runs with ``-n``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from mnv1.cli.bench import SUBCOMMANDS
from mnv1.config import TuneConfig

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
BENCHMARKS = (REPO / "BENCHMARKS.md").read_text()
VENV = Path(sys.executable).parents[1]
SCRIPTS = sorted(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])
# The subcommands the script offers: the README must name each and no other.
BENCH_COMMANDS = tuple(SUBCOMMANDS)
# Their command lines go to Hydra (overrides), not to argparse.
HYDRA_SCRIPTS = ("mnv1-train", "mnv1-tune")
ACTIVATE = ". .venv/bin/activate"


def in_new_shell(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` in a fresh bash whose environment holds nothing of this test run's: the
    system PATH, then the README's activation line, run from ``cwd``."""
    script = f'. "{VENV}/bin/activate" && exec "$@"'
    return subprocess.run(
        ["/bin/bash", "-c", script, "bash", *command],
        cwd=cwd,
        env={"HOME": str(Path.home()), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def box_rows() -> list[tuple[list[str], set[str]]]:
    """README.md's "What is in the box" table: per row, the commands of its first column
    (`mnv1-ui` (`make ui`) is two; `\\|` read as the alternatives it stands for) and the flags
    its description names (`--log-to URI`)."""
    section = README.split("## What is in the box", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first, described = re.split(r"(?<!\\)\|", line)[1:3]
        commands = [c.replace("\\|", "|") for c in re.findall(r"`([^`]+)`", first)]
        named = {span.split()[0] for span in re.findall(r"`(--[^`]+)`", described)}
        rows.append((commands, named))
    return rows


def box_table() -> list[str]:
    return [command for commands, _ in box_rows() for command in commands]


def shell_commands(text: str) -> Iterator[list[str]]:
    """Every command line of ``text`` that starts with an mnv1 console script: inline code and
    the lines of fenced blocks (continuations joined, comments dropped), split as a shell would."""
    blocks = re.findall(r"```(?:bash)?\n(.*?)```", text, re.S)
    lines = [line for b in blocks for line in b.replace("\\\n", " ").splitlines()]
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    for line in [*lines, *(span.replace("\\|", "|") for span in inline)]:
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        for start, word in enumerate(words):
            if word in SCRIPTS:
                end = next(
                    (i for i in range(start + 1, len(words)) if words[i] in ("|", "&&", ";")),
                    len(words),
                )
                yield words[start:end]


def flags(words: list[str]) -> set[str]:
    return {w.split("=", 1)[0] for w in words[1:] if w.startswith("--")}


def overrides(words: list[str]) -> list[tuple[str, str]]:
    return [
        tuple(w.split("=", 1))  # type: ignore[misc]
        for w in words[1:]
        if "=" in w and not w.startswith("-")
    ]


def help_key(words: list[str]) -> tuple[str, ...]:
    """Whose help documents these words' flags: the script, or mnv1-bench's subcommand."""
    if words[0] == "mnv1-bench" and len(words) > 1 and words[1] in BENCH_COMMANDS:
        return (words[0], words[1])
    return (words[0],)


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory outside the checkout, as a new user's shell would start in."""
    return tmp_path_factory.mktemp("elsewhere")


@pytest.fixture(scope="module")
def helps(outside: Path) -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    """``SCRIPT --verbose --help`` for every script (and every mnv1-bench subcommand), run at
    once: console scripts start slowly, one at a time they would add up."""
    keys = [(s,) for s in SCRIPTS] + [("mnv1-bench", c) for c in BENCH_COMMANDS]
    keys.append(("mnv1-train", "--hydra-help"))  # Hydra's own flags (-m, --cfg, ...)

    def run(key: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        asked = ["--hydra-help"] if key[-1] == "--hydra-help" else [*key[1:], "--help"]
        return in_new_shell(key[0], "--verbose", *asked, cwd=outside)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(keys, pool.map(run, keys), strict=True))


def test_every_console_script_is_in_the_box_table_and_every_listed_one_exists() -> None:
    named = {c.split()[0] for c in box_table() if c.startswith("mnv1-")}
    assert named == set(SCRIPTS)


def test_every_script_answers_help_with_verbose_from_outside_the_checkout(
    helps: dict[tuple[str, ...], subprocess.CompletedProcess[str]],
) -> None:
    for key, done in helps.items():
        assert done.returncode == 0, (key, done.stdout[-2000:], done.stderr[-2000:])
        assert done.stdout.strip(), key
    # argparse lists the flag; Hydra's scripts take it too (above) and hand Hydra the rest.
    for key, done in helps.items():
        if key[0] not in HYDRA_SCRIPTS and key != ("mnv1-bench",):  # on each subcommand
            assert "--verbose" in done.stdout, key


def test_every_flag_the_docs_show_is_in_its_scripts_help(
    helps: dict[tuple[str, ...], subprocess.CompletedProcess[str]],
) -> None:
    commands = [c.split() for c in box_table() if c.startswith("mnv1-")]
    for row, described in box_rows():
        words = row[0].split()
        alternatives = words[1].split("|") if words[0] == "mnv1-bench" else []
        variants = [[words[0], a] for a in alternatives] or [words[:1]]
        commands += [[*variant, *sorted(described)] for variant in variants]
    commands += list(shell_commands(README)) + list(shell_commands(BENCHMARKS))
    assert len(commands) > 20
    checked = set()
    for words in commands:
        if words[0] == "mnv1-bench" and len(words) > 1 and "|" in words[1]:
            assert set(words[1].split("|")) == set(BENCH_COMMANDS)
        for flag in flags(words):
            key = help_key(words)
            if words[0] == "mnv1-train":
                key = ("mnv1-train", "--hydra-help")
            if words[0] == "mnv1-tune":
                assert flag in ("--verbose", "--help"), words
                continue
            text = helps[key].stdout
            assert re.search(rf"(^|[\s,\[]){re.escape(flag)}\b", text, re.M), (flag, words)
            checked.add(flag)
    # The flags the box table itself shows are among them.
    assert {"--experiment", "--out", "--status", "--compare", "--alpha", "--resolution"} <= checked
    assert {"--log-to", "--refresh-probe", "--tracking-uri", "--port"} <= checked


def composed_config(helps: dict[tuple[str, ...], subprocess.CompletedProcess[str]]) -> dict:
    """The default config and the config groups, as ``mnv1-train --help`` prints them."""
    text = helps[("mnv1-train",)].stdout
    groups_text = text.split("== Configuration groups ==", 1)[1].split("== Config ==", 1)[0]
    groups = {
        name.strip(): {o.strip() for o in options.split(",")}
        for name, options in re.findall(r"^([\w/]+): (.+)$", groups_text, re.M)
    }
    config_text = text.split("== Config ==", 1)[1].split("\n", 2)[2]
    config = yaml.safe_load(config_text.split("\nPowered by Hydra", 1)[0])
    return {"groups": groups, "config": config}


def test_every_override_the_box_table_shows_names_a_group_option_or_key(
    helps: dict[tuple[str, ...], subprocess.CompletedProcess[str]],
) -> None:
    found = composed_config(helps)
    groups, config = found["groups"], found["config"]
    tune_keys = {f.name for f in fields(TuneConfig)}
    seen = 0
    for command in box_table():
        words = command.split()
        for key, value in overrides(words):
            key = key.strip("'\"")
            seen += 1
            if key in groups:
                assert value in groups[key], (command, key, value)
            elif key.startswith("tune."):
                assert words[0] == "mnv1-tune" and key.split(".", 1)[1] in tune_keys, command
            else:
                node = config
                for part in key.split("."):
                    assert isinstance(node, dict) and part in node, (command, key)
                    node = node[part]
    assert seen >= 8


def test_the_single_run_row_composes_as_written(outside: Path) -> None:
    """`mnv1-train model.alpha=0.5 model.resolution=160` with `--cfg job`: Hydra composes and
    prints it instead of training (and `--verbose` is no override)."""
    command = next(c for c in box_table() if c.startswith("mnv1-train") and " -m " not in c)
    done = in_new_shell(*command.split(), "--verbose", "--cfg", "job", cwd=outside)
    assert done.returncode == 0, done.stderr[-3000:]
    model = yaml.safe_load(done.stdout)["model"]
    assert (model["alpha"], model["resolution"]) == (0.5, 160)


def make_targets() -> list[str]:
    return sorted(set(re.findall(r"`make ([\w-]+)`", README)) | {"demo", "test"})


def test_every_make_target_the_readme_names_exists() -> None:
    assert {"demo", "test", "ui", "test-fast"} <= set(make_targets())
    for target in make_targets():
        done = subprocess.run(
            ["make", "--no-print-directory", "-n", target],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, (target, done.stderr)


def test_make_test_brings_up_the_system_packages_before_pytest() -> None:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "test"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    deps = lines.index(".ci/system-deps")
    pytest_line = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    assert deps < pytest_line
    # CI runs the same: the script, then `make test`, nothing of its own.
    ci = [
        line
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ci == ["set -euo pipefail", 'cd "$(dirname "$0")/.."', ".ci/system-deps", "make test"]


def test_the_venv_install_ends_by_printing_the_activation_line_the_readme_gives() -> None:
    assert ACTIVATE in README
    # --no-print-directory: under `make test` this make is a sub-make, which prints "make[1]:
    # Entering/Leaving directory" around its commands by default.
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "-B", "venv"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("echo ") and last.endswith(f'{ACTIVATE}"'), done.stdout
