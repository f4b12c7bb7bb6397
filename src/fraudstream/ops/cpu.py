"""CPU time of the stack's processes over a window, in cores (CPU seconds per wall second).

Each tracked entry is a name and its processes: the broker's JVM, PostgreSQL's postmaster (with its
children: backends, WAL writer, autovacuum...), the detectors, the sink, the load generator. A
process's time is counted with its descendants' (``tree``), including the children it reaped during
the window (psutil's ``children_user``/``children_system``), so a PostgreSQL backend that ended
within the window is not lost. The load generator is the bench's own process without its children
(the services it started are tracked by name).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

LOAD_GENERATOR = "load_generator"
TOTAL = "total"


@dataclass(frozen=True)
class Tracked:
    """A name and the processes it stands for; ``tree``: with their descendants."""

    name: str
    pids: tuple[int, ...]
    tree: bool = True


def cpu_seconds(tracked: Tracked) -> float:
    """User + system CPU seconds spent so far by ``tracked``'s processes (0 for one that is gone)."""
    return sum(_process_seconds(pid, tracked.tree) for pid in tracked.pids)


def _process_seconds(pid: int, tree: bool) -> float:
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)] if tree else [root]
    except psutil.NoSuchProcess:
        return 0.0
    seconds = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds += times.user + times.system
        if tree:
            seconds += times.children_user + times.children_system
    return seconds


class CpuWindow:
    """CPU seconds of each tracked entry between ``start()`` and ``stop()``, as cores."""

    def __init__(self, tracked: Iterable[Tracked]) -> None:
        self.tracked = list(tracked)
        self._started: dict[str, float] = {}
        self._wall = 0.0

    def start(self) -> CpuWindow:
        self._started = {entry.name: cpu_seconds(entry) for entry in self.tracked}
        self._wall = time.perf_counter()
        return self

    def stop(self) -> CpuUse:
        wall = time.perf_counter() - self._wall
        spent = {entry.name: cpu_seconds(entry) - self._started[entry.name] for entry in self.tracked}
        return CpuUse(spent, wall)


@dataclass(frozen=True)
class CpuUse:
    """CPU seconds by name over ``wall`` seconds."""

    seconds: dict[str, float]
    wall: float

    def stack_seconds(self) -> float:
        """The stack's CPU seconds: every entry but the load generator."""
        return sum(value for name, value in self.seconds.items() if name != LOAD_GENERATOR)

    def cores(self) -> dict[str, float]:
        """Cores of each entry and the stack's ``total`` (the load generator left out of it)."""
        cores = {name: round(value / self.wall, 3) for name, value in self.seconds.items()}
        return {**cores, TOTAL: round(self.stack_seconds() / self.wall, 3)}

    def ms_per_message(self, messages: int) -> float:
        """The stack's CPU milliseconds per message."""
        return round(self.stack_seconds() * 1000 / messages, 3)


def measure_idle(tracked: Iterable[Tracked], seconds: float) -> CpuUse:
    """CPU of ``tracked`` over ``seconds`` of nothing asked of it."""
    window = CpuWindow(tracked).start()
    time.sleep(seconds)
    return window.stop()
