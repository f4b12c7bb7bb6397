"""Ports for local servers: free, and out of the way of the kernel's ephemeral ports."""

from __future__ import annotations

import socket
from pathlib import Path

from fraudstream.infra.process import free_port


def test_a_free_port_and_the_next_one_can_be_bound_and_are_not_ephemeral():
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    first_ephemeral = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32_768
    for _ in range(20):
        port = free_port(following=1)
        assert port + 1 < first_ephemeral
        with socket.socket() as one, socket.socket() as two:
            one.bind(("127.0.0.1", port))
            two.bind(("127.0.0.1", port + 1))
