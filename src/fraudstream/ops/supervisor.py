"""`fraudstream run`: the whole system in one terminal, stopped cleanly with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from rich.console import Console

from fraudstream.config import Settings
from fraudstream.infra.process import free_port, wait_until
from fraudstream.infra.stack import LocalStack
from fraudstream.pipeline.lifecycle import ensure_champion

SERVICES = ("detector", "sink", "ui")
RESTART_DELAY_S = 2.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen = field(repr=False)


def start_service(name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fraudstream", name], start_new_session=True)


class ServiceProcess:
    """`fraudstream <name>` as a child process with its own metrics/health port and output file."""

    def __init__(self, name: str, settings: Settings, *args: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.settings = settings
        self.args = args
        self.env = env or {}
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.output = Path(settings.log_dir) / f"{name}-{self.port}.out"

    def start(self) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable,
            "-m",
            "fraudstream",
            self.name,
            "--metrics-port",
            str(self.port),
            *self.args,
        ]
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.settings.environment(), **self.env},
            )

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as reply:
                return orjson.loads(reply.read())
        except (OSError, ValueError):
            return None

    def ready(self) -> bool:
        return (self.health() or {}).get("ready") is True

    def wait_ready(self, timeout: float = 90.0) -> None:
        wait_until(self.ready, timeout, f"{self.name}", self.output)

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        if not self.output.exists():
            return ""
        return "\n".join(self.output.read_text(errors="replace").splitlines()[-lines:])


def run_system(settings: Settings, console: Console, keep_infra: bool = False) -> None:
    stack = LocalStack.from_settings(settings)
    started = time.perf_counter()
    with console.status("starting") as status:
        stack.up(step=lambda message: status.update(message))
        status.update("model registry: making sure a champion serves")
        champion = ensure_champion(settings)
    children = [Child(name, start_service(name)) for name in SERVICES]
    console.print(
        f"[green]ready in {time.perf_counter() - started:.1f} s[/]\n"
        f"  UI:         http://localhost:{settings.ui_port}\n"
        f"  Kafka:      {settings.kafka_bootstrap_servers}\n"
        f"  PostgreSQL: {stack.postgres.dsn}\n"
        f"  MLflow:     {settings.mlflow_tracking_uri or 'no registry'}, "
        f"champion {champion or settings.model_path}\n"
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
            console.print(
                f"[yellow]{child.name} exited with {code}; restarting in {RESTART_DELAY_S:.0f} s[/]"
            )
            time.sleep(RESTART_DELAY_S)
            child.process = start_service(child.name)


def _wait_or_kill(process: subprocess.Popen, timeout: float = 20.0) -> None:
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
