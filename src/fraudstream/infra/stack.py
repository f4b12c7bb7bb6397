"""The local stack of `fraudstream up`: PostgreSQL and Kafka started, schema migrated, topics created."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from fraudstream.config import Settings
from fraudstream.infra.kafka import KafkaServer
from fraudstream.infra.migrations import migrate
from fraudstream.infra.mlflow import MlflowServer
from fraudstream.infra.postgres import PostgresServer
from fraudstream.infra.topics import ensure_topics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalStack:
    kafka: KafkaServer
    postgres: PostgresServer
    settings: Settings
    mlflow: MlflowServer | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStack:
        host, _, port = settings.kafka_bootstrap_servers.split(",")[0].rpartition(":")
        kafka = KafkaServer(
            cache_dir=settings.cache_dir,
            data_dir=settings.data_dir / "kafka",
            port=int(port),
            host=_loopback(host),
        )
        postgres = PostgresServer(
            data_dir=settings.data_dir,
            port=settings.pg_port,
            user=settings.pg_user,
            password=settings.pg_password,
            database=settings.pg_database,
            host=_loopback(settings.pg_host),
        )
        return cls(kafka=kafka, postgres=postgres, settings=settings, mlflow=local_mlflow(settings))

    def up(self, step: Callable[[str], None] = logger.info) -> None:
        """Bring everything up; idempotent. ``step`` is told each stage as it starts."""
        step("PostgreSQL: starting")
        self.postgres.start()
        step("PostgreSQL: applying migrations")
        asyncio.run(migrate(self.settings.pg_dsn, reader=self.settings.pg_reader))
        step("Kafka: resolving jars and starting")
        self.kafka.start()
        step("Kafka: creating topics")
        ensure_topics(self.settings)
        if self.mlflow is not None:
            step("MLflow: starting the tracking server and registry")
            self.mlflow.start()

    def down(self) -> None:
        if self.mlflow is not None:
            self.mlflow.stop()
        self.kafka.stop()
        self.postgres.stop()


def local_mlflow(settings: Settings) -> MlflowServer | None:
    """The local MLflow server, when the clients are configured to use it (``127.0.0.1:mlflow_port``)."""
    local = {f"http://{host}:{settings.mlflow_port}" for host in ("127.0.0.1", "localhost")}
    if settings.mlflow_tracking_uri.rstrip("/") not in local:
        return None
    return MlflowServer(
        venv=settings.mlflow_venv,
        data_dir=settings.data_dir,
        pg_dsn=settings.pg_dsn,
        port=settings.mlflow_port,
    )


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("localhost", "") else host
