"""`fraudstream run`: the whole system in one terminal, stopped cleanly with Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console

from fraudstream.config import Settings
from fraudstream.infra.process import free_port, wait_until
from fraudstream.infra.security import child_environment
from fraudstream.infra.stack import LocalStack
from fraudstream.pipeline import kafka
from fraudstream.pipeline.lifecycle import ensure_champion

SERVICES = ("detector", "sink", "ui")
# The setting that holds each service's port (/metrics and /healthz; the UI's page), passed to it
# through the environment like every other setting.
PORT_SETTINGS = {"detector": "detector_metrics_port", "sink": "sink_metrics_port", "ui": "ui_port"}
RESTART_DELAY_S = 2.0


class ServiceProcess:
    """`fraudstream <name>` as a child process with its port and an output file (in ``log_dir``).

    ``port`` is the service's port (its setting in ``PORT_SETTINGS``): `fraudstream run` gives the
    configured one, tests and the bench a free one (the default). The child runs in a session of its
    own, so a Ctrl-C in the terminal reaches only the supervisor, which stops the children in order.
    """

    def __init__(
        self,
        name: str,
        settings: Settings,
        *args: str,
        env: dict[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.name = name
        self.port = free_port() if port is None else port
        self.settings = settings.model_copy(update={PORT_SETTINGS[name]: self.port})
        self.args = args
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.output = Path(settings.log_dir) / f"{name}-{self.port}.out"

    def start(self) -> None:
        """Start the service (again, after it exited: same port, output appended)."""
        self.output.parent.mkdir(parents=True, exist_ok=True)
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fraudstream", self.name, *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env=child_environment({**os.environ, **self.settings.environment()}, self.env),
            )

    def exit_code(self) -> int | None:
        """None while running (or never started), else how it ended."""
        return None if self.process is None else self.process.poll()

    def health(self) -> dict[str, Any]:
        return kafka.service_health(self.port, timeout=2)

    def ready(self) -> bool:
        return self.health().get("ready") is True

    def metrics(self, timeout: float = 5.0) -> str:
        """The service's /metrics page, in Prometheus' text format."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=timeout) as reply:
            return reply.read().decode()

    def metric(self, sample: str) -> float:
        """The sum of the service's /metrics samples named ``sample`` (all labels); 0 if it has none."""
        families = text_string_to_metric_families(self.metrics())
        return sum(s.value for family in families for s in family.samples if s.name == sample)

    def wait_ready(self, timeout: float = 90.0) -> None:
        wait_until(self.ready, timeout, f"{self.name}", self.output)

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self._running():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def terminate(self) -> None:
        """Ask the service to stop (SIGTERM), without waiting."""
        if self._running():
            self.process.terminate()

    def wait_or_kill(self, timeout: float = 30.0) -> None:
        """Wait for the service to end; kill it if it is still running after ``timeout`` seconds."""
        if self._running():
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def stop(self, timeout: float = 30.0) -> None:
        self.terminate()
        self.wait_or_kill(timeout)

    def _running(self) -> bool:
        return self.process is not None and self.process.poll() is None


def service_credentials(stack: LocalStack, name: str) -> dict[str, str]:
    """The variables that make service ``name`` connect as itself when the stack is secured (none else)."""
    if stack.security is None:
        return {}
    return stack.security.service_environment(stack.settings, name)


def run_system(settings: Settings, console: Console, keep_infra: bool = False, secure: bool = False) -> None:
    stack = LocalStack.from_settings(settings, secure=secure)
    started = time.perf_counter()
    with console.status("starting") as status:
        stack.up(step=lambda message: status.update(message))
        status.update("model registry: making sure a champion serves")
        champion = ensure_champion(stack.settings)
    if secure:
        _announce_first_admin(stack.settings, console)
    services = [
        ServiceProcess(
            name, settings, port=getattr(settings, PORT_SETTINGS[name]), env=service_credentials(stack, name)
        )
        for name in SERVICES
    ]
    for service in services:
        service.start()
    mode = "SASL_SSL + ACLs" if secure else "PLAINTEXT"
    console.print(
        f"[green]ready in {time.perf_counter() - started:.1f} s[/]\n"
        f"  UI:         http://localhost:{settings.ui_port}\n"
        f"  Kafka:      {settings.kafka_bootstrap_servers} ({mode})\n"
        f"  PostgreSQL: {stack.postgres.address}{' (TLS, verify-full)' if secure else ''}\n"
        f"  MLflow:     {settings.mlflow_tracking_uri or 'no registry'}, "
        f"champion {champion or settings.model_path}\n"
        f"  metrics:    http://localhost:{settings.detector_metrics_port}/metrics (detector), "
        f"http://localhost:{settings.sink_metrics_port}/metrics (sink)\n"
        f"  logs:       {settings.log_dir}/<service>.log (output: {settings.log_dir}/<service>-<port>.out)\n"
        f"Send transactions with `fraudstream send{' --secure' if secure else ''} FILE.csv`. "
        "Ctrl-C stops everything."
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
            _restart_exited(services, console)
    finally:
        console.print("stopping services")
        for service in services:
            service.terminate()
        for service in services:
            service.wait_or_kill(20.0)
        if not keep_infra:
            console.print("stopping Kafka and PostgreSQL")
            stack.down()


def _announce_first_admin(settings: Settings, console: Console) -> None:
    """Create the interface's first admin when there is no account, and show its password this once."""
    from fraudstream.ui import accounts

    password = accounts.run(settings.pg_dsn, accounts.first_admin, "fraudstream run")
    if password is not None:
        console.print(
            f"[bold]first login of the interface[/]: user [bold]admin[/], password [bold]{password}[/]\n"
            "  shown only now: keep it, or add people with `fraudstream users add NAME --role ROLE --secure`"
        )


def _restart_exited(services: list[ServiceProcess], console: Console) -> None:
    for service in services:
        code = service.exit_code()
        if code is not None:
            console.print(
                f"[yellow]{service.name} exited with {code} (see {service.output}); "
                f"restarting in {RESTART_DELAY_S:.0f} s[/]"
            )
            time.sleep(RESTART_DELAY_S)
            service.start()
