"""Ports for local servers (free, out of the way of the kernel's ephemeral ports), and waiting for them."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from fraudstream.infra.process import InfraError, free_port, wait_until


def test_a_free_port_and_the_next_one_can_be_bound_and_are_not_ephemeral():
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    first_ephemeral = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32_768
    for _ in range(20):
        port = free_port(following=1)
        assert port + 1 < first_ephemeral
        with socket.socket() as one, socket.socket() as two:
            one.bind(("127.0.0.1", port))
            two.bind(("127.0.0.1", port + 1))


def test_wait_until_returns_once_the_check_holds():
    answers = iter([False, False, True])

    wait_until(lambda: next(answers), 5, "the third answer")


def test_a_timeout_names_what_and_shows_the_end_of_each_log(tmp_path: Path):
    service, broker = tmp_path / "service.out", tmp_path / "kafka.log"
    service.write_text("".join(f"service line {n}\n" for n in range(100)))
    broker.write_text("broker: coordinator not available\n")

    with pytest.raises(InfraError) as raised:
        wait_until(lambda: False, 0.3, "the rows", service, tmp_path / "absent.log", broker, lines=5)

    message = str(raised.value)
    assert message.startswith("the rows not ready after 0 s")
    assert "service line 99" in message and "service line 95" in message and "service line 94" not in message
    assert f"last lines of {broker}:\nbroker: coordinator not available" in message
    assert "absent.log" not in message
