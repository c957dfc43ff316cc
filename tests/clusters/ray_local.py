"""A one-node Ray cluster on loopback, for the tests and as a readable recipe.

    ray start --head --node-ip-address 127.0.0.1 --port PORT --num-cpus 2 \\
        --object-store-memory 100000000 --include-dashboard=false --temp-dir DIR
    RAY_ADDRESS=127.0.0.1:PORT mnv1-train -m experiment=smoke hydra/launcher=ray_cluster

Stopping: ``ray stop`` ends every Ray process of the host, whoever started it; on a shared
machine this cluster is stopped through its own processes instead, found by its temp
directory (every Ray daemon's command line names it). Its workers exit with their raylet.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil

RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RayCluster:
    address: str
    temp_dir: Path

    def env(self) -> dict[str, str]:
        return {"RAY_ADDRESS": self.address}

    def processes(self) -> list[int]:
        """Pids of every process of this cluster: the daemons ``ray start`` detached (their
        command lines name the temp directory) and everything they started (agents, workers
        renamed ``ray::...``, and the workers' own children)."""
        marker = str(self.temp_dir).encode()
        found: set[int] = set()
        for proc in psutil.process_iter():
            try:
                if (
                    proc.pid != os.getpid()
                    and marker in Path(f"/proc/{proc.pid}/cmdline").read_bytes()
                ):
                    found.add(proc.pid)
                    found.update(child.pid for child in proc.children(recursive=True))
            except (OSError, psutil.Error):
                continue
        return sorted(found)

    def stop(self, grace: float = 2, timeout: float = 15) -> None:
        """SIGTERM every process of this cluster, SIGKILL what is left after ``grace`` seconds;
        raise if any survives ``timeout`` more.

        The grace is short on purpose: sent SIGTERM all at once, gcs_server, the raylet, the
        autoscaler's monitor and the runtime-env agent were all still running 10 s later (Ray
        2.60 under hydra-ray-launcher 1.2), so a longer grace was only waited out, every time."""
        procs = []
        for pid in self.processes():
            with suppress(psutil.Error):
                procs.append(psutil.Process(pid))
        for proc in procs:
            with suppress(psutil.Error):
                proc.terminate()
        _, alive = psutil.wait_procs(procs, timeout=grace)
        for proc in alive:
            with suppress(psutil.Error):
                proc.kill()
        _, alive = psutil.wait_procs(alive, timeout=timeout)
        left = sorted({p.pid for p in alive if _running(p)} | set(self.processes()))
        if left:
            raise RuntimeError(f"Ray processes {left} survived the cluster's stop")


def _running(proc: psutil.Process) -> bool:
    """Alive and not a zombie (a dead process whose parent has not reaped it yet)."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@contextmanager
def local_ray(cpus: int = 2, env: dict[str, str] | None = None) -> Iterator[RayCluster]:
    # Short: Ray's unix sockets live under the temp dir and their paths are limited to 107 bytes.
    temp_dir = Path(tempfile.mkdtemp(prefix="mnv1ray", dir="/tmp"))
    port = free_port()
    cluster = RayCluster(f"127.0.0.1:{port}", temp_dir)
    cmd = [
        str(RAY),
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        # Not the fixed defaults (10001; the dashboard agent's 52365, which it binds even
        # without the dashboard), which another Ray on the host may hold.
        f"--ray-client-server-port={free_port()}",
        f"--dashboard-agent-listen-port={free_port()}",
        f"--num-cpus={cpus}",
        "--num-gpus=0",
        # The object store holds only the cells' small arguments and results.
        "--object-store-memory=100000000",
        "--include-dashboard=false",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
    ]
    try:
        out = subprocess.run(
            cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=180
        )
        if out.returncode != 0:
            raise RuntimeError(f"ray start failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
        yield cluster
    finally:
        cluster.stop()


if __name__ == "__main__":
    with local_ray() as up:
        print(f"export RAY_ADDRESS={up.address}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        with suppress(KeyboardInterrupt):
            signal.pause()
