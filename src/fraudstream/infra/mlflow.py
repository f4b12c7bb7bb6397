"""A local MLflow tracking server and model registry, run from its own virtualenv (``.venv-mlflow``).

The server (``mlflow``, which pins pyarrow < 26) lives in a virtualenv of its own so that the product's
virtualenv keeps its pyarrow; the product talks to it as a client (``mlflow-skinny``). Its backend store
is a database of its own (``mlflow``) in the project's PostgreSQL, reached through psycopg 3; artifacts
(the registered models) are files under the data directory, served by the server itself. One worker:
the default four take ~0.5 GB and compete for the two cores with Kafka, PostgreSQL and the services.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from fraudstream.infra.process import InfraError, port_in_use, read_pid, spawn, terminate, wait_until

logger = logging.getLogger(__name__)

DATABASE = "mlflow"


@dataclass(frozen=True)
class MlflowServer:
    """One local tracking server: its virtualenv, data, port, and the PostgreSQL it stores runs in."""

    venv: Path
    data_dir: Path
    pg_dsn: str
    port: int = 5000
    host: str = "127.0.0.1"

    @property
    def home(self) -> Path:
        return (self.data_dir / "mlflow").resolve()

    @property
    def artifacts_dir(self) -> Path:
        return (self.data_dir / "mlflow-artifacts").resolve()

    @property
    def pid_file(self) -> Path:
        return self.home / "mlflow.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "mlflow.log"

    @property
    def tracking_uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def backend_store_uri(self) -> str:
        """The ``mlflow`` database of the project's PostgreSQL, through psycopg 3 (SQLAlchemy 2); the
        connection's options (TLS in the secured mode) kept."""
        parts = urlsplit(self.pg_dsn)
        return urlunsplit(parts._replace(scheme="postgresql+psycopg", path=f"/{DATABASE}"))

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.tracking_uri}/health", timeout=2) as reply:
                return reply.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def start(self, timeout: float = 120.0) -> None:
        """Create the database on first use and start the server (idempotent); wait until it answers."""
        if self.pid() is None:
            program = self.venv / "bin" / "mlflow"
            if not program.exists():
                raise InfraError(
                    f"{program} is missing: `make mlflow-server` creates the server's virtualenv"
                )
            if port_in_use(self.host, self.port):
                raise InfraError(f"port {self.port} is in use by another program; MLflow needs it free")
            asyncio.run(ensure_database(self.pg_dsn))
            self.home.mkdir(parents=True, exist_ok=True)
            self.artifacts_dir.mkdir(parents=True, exist_ok=True)
            logger.info("starting MLflow on %s", self.tracking_uri)
            command = [
                str(program), "server",
                "--host", self.host, "--port", str(self.port), "--workers", "1",
                "--artifacts-destination", str(self.artifacts_dir),
            ]  # fmt: skip
            # The store's URI holds the password: passed in the environment, not on the command line.
            spawn(
                command,
                self.log_file,
                self.pid_file,
                env={"MLFLOW_BACKEND_STORE_URI": self.backend_store_uri},
            )
        wait_until(self.healthy, timeout, "MLflow", self.log_file)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            logger.info("stopping MLflow")
            terminate(pid)
        self.pid_file.unlink(missing_ok=True)


async def ensure_database(pg_dsn: str) -> None:
    """Create the ``mlflow`` database if it does not exist (the application's role owns it)."""
    connection = await asyncpg.connect(pg_dsn)
    try:
        if not await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE):
            await connection.execute(f"CREATE DATABASE {DATABASE}")
    finally:
        await connection.close()
