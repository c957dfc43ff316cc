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
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

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
        """Pids of every process of this cluster (daemons and workers)."""
        found = []
        marker = str(self.temp_dir).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in cmdline or marker in environ:
                found.append(int(entry.name))
        return found

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM every process of this cluster, SIGKILL what is left; raise if any survives."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.processes():
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + timeout / 2
            while self.processes() and time.monotonic() < deadline:
                time.sleep(0.5)
        left = self.processes()
        if left:
            raise RuntimeError(f"Ray processes {left} survived the cluster's stop")


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
