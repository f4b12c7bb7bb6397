"""`fraudstream run`: the whole system in one terminal, stopped cleanly with Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

from rich.console import Console

from fraudstream.config import Settings
from fraudstream.infra.stack import LocalStack

SERVICES = ("detector", "sink", "ui")
RESTART_DELAY_S = 2.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen = field(repr=False)
    restarts: int = 0


def start_service(name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fraudstream", name], start_new_session=True)


def run_system(settings: Settings, console: Console, keep_infra: bool = False) -> None:
    stack = LocalStack.from_settings(settings)
    started = time.perf_counter()
    with console.status("starting") as status:
        stack.up(step=lambda message: status.update(message))
    children = [Child(name, start_service(name)) for name in SERVICES]
    console.print(
        f"[green]ready in {time.perf_counter() - started:.1f} s[/]\n"
        f"  UI:         http://localhost:{settings.ui_port}\n"
        f"  Kafka:      {settings.kafka_bootstrap_servers}\n"
        f"  PostgreSQL: {stack.postgres.dsn}\n"
        f"  metrics:    http://localhost:{settings.detector_metrics_port}/metrics (detector), "
        f"http://localhost:{settings.sink_metrics_port}/metrics (sink)\n"
        f"  logs:       {settings.log_dir}/<service>.log\n"
        "Send transactions with `fraudstream send FILE.csv`. Ctrl-C stops everything."
    )
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        while not stopping:
            time.sleep(0.5)
            _restart_exited(children, console)
    finally:
        console.print("stopping services")
        for child in children:
            child.process.send_signal(signal.SIGTERM)
        for child in children:
            _wait_or_kill(child.process)
        if not keep_infra:
            console.print("stopping Kafka and PostgreSQL")
            stack.down()


def _restart_exited(children: list[Child], console: Console) -> None:
    for child in children:
        code = child.process.poll()
        if code is not None:
            console.print(f"[yellow]{child.name} exited with {code}; restarting in {RESTART_DELAY_S:.0f} s[/]")
            time.sleep(RESTART_DELAY_S)
            child.process = start_service(child.name)
            child.restarts += 1


def _wait_or_kill(process: subprocess.Popen, timeout: float = 20.0) -> None:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
