"""Is the cluster a sweep's launcher needs up? Asked before anything starts.

Without this, a SLURM sweep whose controller is down opens its parent run, prepares its data and
then fails inside submitit's ``sbatch`` with a long traceback; a Ray sweep whose head is gone
waits in ``ray.init`` for a minute. Both checks answer in seconds (``CHECK_TIMEOUT_S`` at most)
and name what to start.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

CHECK_TIMEOUT_S = 15.0
SLURM_LAUNCHERS = ("SlurmLauncher",)
RAY_LAUNCHERS = ("RayClusterLauncher", "RayLauncher")


def slurm_problem(launcher: str = "slurm") -> str | None:
    """Why SLURM cannot take jobs from this host, or None when its controller answers."""
    name = f"hydra/launcher={launcher}"
    if shutil.which("scontrol") is None or shutil.which("sbatch") is None:
        return (
            f"{name}: the SLURM client commands (sbatch, scontrol) are not installed on this "
            "host; run the sweep from a SLURM login node"
        )
    conf = os.environ.get("SLURM_CONF")
    if conf and not Path(conf).is_file():
        return f"{name}: SLURM_CONF={conf} does not exist; point it at the cluster's slurm.conf"
    try:
        out = subprocess.run(
            ["scontrol", "ping"], capture_output=True, text=True, timeout=CHECK_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return (
            f"{name}: `scontrol ping` got no answer within {CHECK_TIMEOUT_S:.0f} s; start "
            "slurmctld (and slurmd on the nodes), or set SLURM_CONF to the cluster's slurm.conf"
        )
    text = (out.stdout + out.stderr).strip()
    if out.returncode != 0 or " is UP" not in text:
        first = text.splitlines()[0] if text else f"exit {out.returncode}"
        return (
            f"{name}: the SLURM controller does not answer ({first}); start slurmctld (and "
            "slurmd on the nodes), or set SLURM_CONF to the cluster's slurm.conf"
        )
    return None


def ray_current_cluster() -> str | None:
    """The address ``ray start --head`` left for ``address='auto'`` on this host, if any."""
    folder = Path(os.environ.get("RAY_TMPDIR", "/tmp")) / "ray"
    try:
        return (folder / "ray_current_cluster").read_text().strip() or None
    except OSError:
        return None


def ray_problem(address: str | None, launcher: str = "ray_cluster") -> str | None:
    """Why no Ray cluster answers at ``address`` (``auto``, ``host:port``, ``ray://host:port``),
    or None when one does. No address (``local``) starts a private Ray: nothing to check."""
    name = f"hydra/launcher={launcher}"
    start = (
        "start a head with `ray start --head --port PORT`, or point RAY_ADDRESS at a running one"
    )
    if address in (None, "", "local"):
        return None
    target = address
    if address == "auto":
        found = ray_current_cluster()
        if found is None:
            return f"{name}: no Ray cluster runs on this host (address 'auto'); {start}"
        target = found
    hostport = target.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return f"{name}: Ray address {address!r} is not host:port or ray://host:port"
    try:
        with socket.create_connection((host, int(port)), timeout=CHECK_TIMEOUT_S / 3):
            return None
    except OSError as exc:
        return f"{name}: no Ray head answers at {hostport} ({exc.strerror or exc}); {start}"


def cluster_problem(launcher_target: str | None, ray_address: str | None) -> str | None:
    """The problem of the cluster behind a Hydra launcher ``_target_``; None when it is up or
    the launcher runs on this host."""
    cls = (launcher_target or "").rsplit(".", 1)[-1]
    if cls in SLURM_LAUNCHERS:
        return slurm_problem()
    if cls in RAY_LAUNCHERS:
        return ray_problem(ray_address)
    return None
