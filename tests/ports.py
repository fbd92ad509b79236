"""Ports for the servers the tests start, chosen so that nothing else can take one before the server binds it.

Asking the kernel for port 0 and closing the probe leaves a gap before the server binds the number: any
outbound connection on the machine may be handed that same port as its local end meanwhile (it comes from the
same ephemeral range), and the server then fails with "Address already in use". So the ports come from below
the ephemeral range, where only an explicit bind lands, and each pytest-xdist worker has its own block of
them, so two workers never hand out the same one.
"""

from __future__ import annotations

import itertools
import os
import socket
from pathlib import Path

_LOWEST = 20000
_BLOCK = 1000


def _ephemeral_start() -> int:
    """The first port the kernel hands to outbound connections (Linux's setting; IANA's 49152 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49152


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # gw0, gw1, ... under xdist; one process otherwise
    return int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else 0


def _block() -> range:
    blocks = max(1, (_ephemeral_start() - _LOWEST) // _BLOCK)
    start = _LOWEST + (_worker_index() % blocks) * _BLOCK
    return range(start, start + _BLOCK)


# Cycles through this worker's block, so a port handed out once is not handed out again until the block wraps.
_NEXT = itertools.cycle(_block())


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now and no other test worker or outbound connection will take."""
    for _ in range(_BLOCK):
        port = next(_NEXT)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use, or a recent connection's TIME_WAIT: the next one
            return port
    raise RuntimeError(f"no free port in {_block()}")
