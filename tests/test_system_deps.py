""".ci/system-deps, the script ``make test`` (and CI) runs before pytest, and how the tests find
the PostgreSQL server it installs.

The script is run for real under a PATH that holds only a recording stand-in for ``apt-get``
(it finds programs with shell builtins, so a PATH without them is a machine without them): as an
unprivileged user it must stop with the one ``apt-get install`` line and call nothing; as root it
must install exactly what is missing after one ``apt-get update``; with everything present it
must not call ``apt-get`` at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import server_support
from server_support import postgres_bin

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "system-deps"
# What slurm-wlm, munge and chromium put on the PATH that the tests run (PostgreSQL's server
# programs are found under /usr/lib/postgresql/<version>/bin instead).
PATH_PROGRAMS = ["slurmctld", "slurmd", "sinfo", "sbatch", "scancel", "squeue", "scontrol"]
PATH_PROGRAMS += ["munged", "chromium"]
WANTED = "slurm-wlm munge chromium"


@pytest.fixture
def bin_dir() -> Iterator[Path]:
    """A folder every user can read and write (pytest's own temp dir is private to root), with
    the script and an ``apt-get`` that records its calls and whose ``install`` puts stand-ins for
    the programs next to itself."""
    folder = Path(tempfile.mkdtemp(prefix="mnv1-system-deps-"))
    try:
        folder.chmod(0o777)
        shutil.copy2(SCRIPT, folder / "system-deps")
        stubs = " ".join(str(folder / p) for p in PATH_PROGRAMS)
        apt_get = folder / "apt-get"
        apt_get.write_text(
            "#!/bin/sh\n"
            f'echo "$DEBIAN_FRONTEND $*" >> {folder}/calls\n'
            f'if [ "$1" = install ]; then for p in {stubs}; do\n'
            "  echo '#!/bin/sh' > $p; /bin/chmod 755 $p; done; fi\n"
        )
        apt_get.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def calls(folder: Path) -> list[str]:
    found = folder / "calls"
    return found.read_text().splitlines() if found.exists() else []


def run(folder: Path, path: str, user: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*user, "/bin/bash", str(folder / "system-deps")],
        env={"PATH": path},
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def as_nobody() -> list[str]:
    """Run as an unprivileged user: ``nobody`` when the tests run as root, else ourselves."""
    if os.geteuid() != 0:
        return []
    return [shutil.which("setpriv") or "setpriv", "--reuid=nobody", "--regid=nogroup",
            "--clear-groups"]  # fmt: skip


def as_root() -> list[str]:
    """Run as root: ourselves when the tests run as root, else root of a user namespace."""
    return [] if os.geteuid() == 0 else [shutil.which("unshare") or "unshare", "--map-root-user"]


def test_not_root_with_packages_missing_stops_with_the_one_apt_get_line(bin_dir: Path) -> None:
    postgres_bin()  # installed here (the tests need it), so it is not in the line
    done = run(bin_dir, str(bin_dir), as_nobody())
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"system-deps: the tests need {WANTED}, not installed here; as root run: "
        f"apt-get update && apt-get install -y --no-install-recommends {WANTED}\n"
    )
    assert calls(bin_dir) == []


def test_as_root_what_is_missing_is_installed_after_one_update(bin_dir: Path) -> None:
    done = run(bin_dir, str(bin_dir), as_root())
    assert done.returncode == 0, done.stderr
    assert calls(bin_dir) == [
        "noninteractive update -qq",
        f"noninteractive install -y -qq --no-install-recommends {WANTED}",
    ]
    assert done.stdout == f"system-deps: installing {WANTED}\n"


def test_as_root_an_install_that_leaves_a_program_missing_fails(bin_dir: Path) -> None:
    # apt-get "succeeds" without installing munged: the script checks, it does not trust.
    (bin_dir / "apt-get").write_text(
        (bin_dir / "apt-get").read_text().replace(f"{bin_dir}/munged ", "")
    )
    done = run(bin_dir, str(bin_dir), as_root())
    assert done.returncode == 1
    assert done.stderr.endswith(
        f"still missing after apt-get install -y --no-install-recommends {WANTED}: munge\n"
    )


def test_with_everything_present_no_apt_get_is_called(bin_dir: Path) -> None:
    for user in (as_root(), as_nobody()):
        done = run(bin_dir, f"{bin_dir}:{os.environ['PATH']}:/usr/sbin:/usr/bin:/sbin:/bin", user)
        assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert calls(bin_dir) == []


def test_postgres_is_found_without_a_version_in_the_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))  # no pg_config
    monkeypatch.setattr(server_support, "PG_ROOT", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"initdb, pg_ctl, createdb"):
        postgres_bin()
    for version, programs in [
        ("9.6", server_support.PG_PROGRAMS),
        ("13", server_support.PG_PROGRAMS),
        ("16", server_support.PG_PROGRAMS),
        ("17", ("initdb",)),  # a partial install (the client only, say) is not a server
    ]:
        (tmp_path / version / "bin").mkdir(parents=True)
        for program in programs:
            (tmp_path / version / "bin" / program).touch()
    assert postgres_bin() == tmp_path / "16" / "bin"
