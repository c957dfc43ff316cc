"""The messages between an orchestrator and its warm zygote (``mnv1.training.zygote``).

Both ends import this module: the orchestrator's side (``mnv1.sweep.warm``) and the zygote. It
sits below both layers, so neither reaches into the other for a name; nothing heavy is imported.

Every message is one JSON object in one datagram of a ``SOCK_SEQPACKET`` Unix socket pair (the
kernel keeps the message boundaries, and a peer's exit reads as end of file), with file
descriptors attached where one side hands the other an open file (``SCM_RIGHTS``):

* control socket, zygote to orchestrator, once after its imports: ``HELLO`` (its pid, the
  seconds its imports took, its threads; ``problem`` set when it cannot fork safely);
* control socket, orchestrator to zygote, one per worker: a spawn request (``argv``, ``env``,
  ``cwd``) with three descriptors: the request's own socket, the worker's stdout and stderr;
* the request's socket, zygote to orchestrator: ``{"pid": N}`` once forked (or ``{"error": ...}``
  when the fork failed), then ``{"returncode": N}`` once the worker was reaped: its exit status,
  or minus the signal that ended it, as ``subprocess`` reports a child's.

End of file on the control socket tells the zygote that its orchestrator has closed it or died.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Any

ZYGOTE_MODULE = "mnv1.training.zygote"

# One datagram holds a whole message: a spawn request carries the worker's environment (a few
# KiB); this leaves room for environments far larger than any seen.
MAX_MESSAGE = 1 << 20
MAX_FDS = 3

HELLO = "hello"


def socket_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair that keeps message boundaries; neither end is inherited across exec."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send(sock: socket.socket, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
    """Send ``message`` (and duplicates of ``fds``, which stay open here) as one datagram."""
    data = json.dumps(message).encode()
    if len(data) > MAX_MESSAGE:
        raise ValueError(f"a zygote message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.sendall(data)


def receive(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """The next message and the descriptors that came with it (the receiver owns them); None
    at end of file: the peer closed its end or died."""
    data, fds, _flags, _address = socket.recv_fds(sock, MAX_MESSAGE, MAX_FDS)
    if not data:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        return None, []
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError(f"a zygote message must be a JSON object, got {data[:80]!r}")
    return message, fds
