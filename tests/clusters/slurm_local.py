"""A one-node SLURM cluster on loopback, for the tests and as a readable recipe.

Everything lives under one directory: the munge key and socket, ``slurm.conf``, the state and
spool directories, the daemons' logs and pid files, and the job completion log. Nothing
system-wide is read or written, so it runs beside (or without) a site's own SLURM and munge.
Commands find this cluster through ``SLURM_CONF`` (see ``SlurmCluster.env``).

    python tests/clusters/slurm_local.py /tmp/slurm     # start it, print the environment, and
                                                        # keep it up until Ctrl-C

It needs the Debian packages ``slurm-wlm`` and ``munge`` (``make test`` installs them through
``.ci/system-deps``) and root (slurmd starts jobs as their owner). Accounting: ``sacct`` reads
only slurmdbd, which needs a MySQL/MariaDB server, so this cluster records finished jobs with
``JobCompType=jobcomp/filetxt`` instead (one ``JobId=... JobState=...`` line per job, read by
``SlurmCluster.completed_jobs``).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def missing_programs() -> list[str]:
    return [p for p in (*DAEMONS, "sinfo", "sbatch", "scancel", "squeue") if not shutil.which(p)]


def slurm_conf(root: Path, cpus: int, memory_mb: int) -> str:
    """A single-node configuration: this host as ``localhost``, one default partition."""
    ctld_port, d_port = free_port(), free_port()
    return f"""\
ClusterName=mnv1test
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root / "munge.socket"}
StateSaveLocation={root / "state"}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "slurmctld.log"}
SlurmdLogFile={root / "slurmd.log"}
# Processes of a job are found through /proc (no cgroups: containers often lack them).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# sacct needs slurmdbd; the completion log records every finished job's final state instead.
JobCompType=jobcomp/filetxt
JobCompLoc={root / "jobcomp.log"}
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# scancel: SIGTERM, then SIGKILL this many seconds later.
KillWait=5
MinJobAge=300
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@dataclass
class SlurmCluster:
    root: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def jobcomp(self) -> Path:
        return self.root / "jobcomp.log"

    def env(self) -> dict[str, str]:
        """What a client (sinfo, sbatch, submitit) needs to reach this cluster."""
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *args: str, timeout: float = 30) -> str:
        env = {**os.environ, **self.env()}
        out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
        return out.stdout + out.stderr

    def completed_jobs(self) -> dict[str, str]:
        """Job id → final state, from the completion log (what ``sacct`` shows with slurmdbd)."""
        if not self.jobcomp.exists():
            return {}
        found = {}
        for line in self.jobcomp.read_text().splitlines():
            job = re.search(r"JobId=(\S+)", line)
            state = re.search(r"JobState=(\S+)", line)
            if job and state:
                found[job.group(1)] = state.group(1)
        return found

    def logs(self) -> str:
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            path = self.root / name
            if path.exists():
                parts.append(
                    f"--- {name} (tail)\n" + "\n".join(path.read_text().splitlines()[-30:])
                )
        return "\n".join(parts)

    def _start(self, name: str, *args: str) -> None:
        env = {**os.environ, **self.env()}
        # Foreground daemons stay our children, so stopping them never depends on pid files.
        self.procs[name] = subprocess.Popen(
            args,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.root / f"{name}.stderr", "wb"),  # noqa: SIM115
            start_new_session=True,
        )

    def start(self, cpus: int = 2, memory_mb: int = 4000) -> None:
        for folder in ("state", "spool", "munge"):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o755)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self.conf.write_text(slurm_conf(self.root, cpus, memory_mb))
        self._start(
            "munged",
            "munged",
            "--foreground",
            "--force",  # the temp directory's parent (/tmp) is world-writable
            f"--key-file={key}",
            f"--socket={self.root / 'munge.socket'}",
            f"--log-file={self.root / 'munged.log'}",
            f"--pid-file={self.root / 'munged.pid'}",
            f"--seed-file={self.root / 'munge' / 'munged.seed'}",
        )
        self._wait(lambda: (self.root / "munge.socket").exists(), "munged")
        # -i: ignore any saved state; -c: clear it (a fresh cluster each time).
        self._start("slurmctld", "slurmctld", "-D", "-c", "-i", "-f", str(self.conf))
        self._start("slurmd", "slurmd", "-D", "-N", "localhost", "-f", str(self.conf))
        self._wait(self.node_idle, "the node to show idle in sinfo")

    def node_idle(self) -> bool:
        try:
            out = self.run("sinfo", "--noheader", "--Node", "--format=%N %t", timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return bool(re.search(r"^localhost idle\s*$", out, flags=re.M))

    def _wait(self, ready: object, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():  # type: ignore[operator]
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}\n{self.logs()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {START_TIMEOUT_S:.0f} s for {what}\n{self.logs()}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop every daemon (slurmd first, so jobs end with their node), whatever happened."""
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        # Job steps (slurmstepd) run in their own sessions; none may outlive the cluster.
        for pid in _stepd_pids(self.root):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _stepd_pids(root: Path) -> list[int]:
    """slurmstepd processes of this cluster (found through its spool directory's name)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            exe = os.readlink(entry / "exe")
        except OSError:
            continue
        if exe.endswith("slurmstepd") and str(root) in cmdline + _environ(entry):
            found.append(int(entry.name))
    return found


def _environ(entry: Path) -> str:
    try:
        return (entry / "environ").read_bytes().decode(errors="replace")
    except OSError:
        return ""


@contextmanager
def local_slurm(root: Path, cpus: int = 2, memory_mb: int = 4000) -> Iterator[SlurmCluster]:
    cluster = SlurmCluster(root)
    try:
        cluster.start(cpus, memory_mb)
        yield cluster
    finally:
        cluster.stop()


def _stop_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(f"signal {signum}")


if __name__ == "__main__":
    # Ctrl-C or `kill` stops the daemons on the way out (a shell's background job ignores
    # SIGINT, so SIGTERM must work too).
    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    with local_slurm(Path(sys.argv[1]).absolute()) as up:
        print(f"export SLURM_CONF={up.conf}", flush=True)
        print(up.run("sinfo"), flush=True)
        signal.pause()
