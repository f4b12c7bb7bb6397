"""Background server processes tracked by pid files, shared by the Kafka and PostgreSQL launchers."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class InfraError(RuntimeError):
    """A local server could not be prepared, started or stopped; the message says why and what to do."""


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def free_port(following: int = 0) -> int:
    """A port free on 127.0.0.1, with the ``following`` ports after it free too.

    Chosen below the kernel's range of ephemeral ports: a port from that range (what binding port 0
    gives) can be taken by any outgoing connection between this check and the server's own bind.
    """
    first = 20_000
    end = max(_ephemeral_start(), first + 1_000)
    while True:
        port = random.randrange(first, end - following)
        if all(_bindable(port + offset) for offset in range(following + 1)):
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive, else None."""
    try:
        pid = int(pid_file.read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def spawn(command: Sequence[str], log_file: Path, pid_file: Path, env: dict[str, str] | None = None) -> int:
    """Start ``command`` detached from this process (own session), output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    pid_file.write_text(f"{process.pid}\n")
    return process.pid


def terminate(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout`` seconds."""
    terminate_all([pid], timeout)


def terminate_all(pids: list[int], timeout: float = 30.0) -> None:
    """SIGTERM to every process at once, then SIGKILL to those still running after ``timeout`` seconds."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            kill(pid)


def kill(pid: int, timeout: float = 30.0) -> None:
    """SIGKILL, and wait until the process is gone (reaped, if it is a child of this one)."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_until(
    check: Callable[[], bool], timeout: float, what: str, *log_files: Path, lines: int = 30
) -> None:
    """Poll ``check`` until it is true; on timeout raise InfraError with the end of each of ``log_files``
    (those that exist): the servers' or services' own account of why it did not happen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tails = "".join(_tail(log_file, lines) for log_file in log_files if log_file.exists())
    raise InfraError(f"{what} not ready after {timeout:.0f} s{tails}")


def _tail(log_file: Path, lines: int) -> str:
    last = log_file.read_text(errors="replace").splitlines()[-lines:]
    return f"\nlast lines of {log_file}:\n" + "\n".join(last)
