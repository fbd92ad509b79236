"""The test servers' ports: bindable, never handed out twice, and outside the range outbound connections use."""

from __future__ import annotations

import socket

from tests.ports import _ephemeral_start, free_port


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(20000 <= port < _ephemeral_start() for port in ports)
    with socket.socket() as server:
        server.bind(("127.0.0.1", ports[-1]))


def test_a_port_something_listens_on_is_skipped() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", free_port() + 1))  # the next one this worker would hand out
        holder.listen()
        taken = holder.getsockname()[1]
        assert free_port() != taken
