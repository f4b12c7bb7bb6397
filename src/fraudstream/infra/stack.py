"""The local stack of `fraudstream up`: PostgreSQL and Kafka started, schema migrated, topics created.

Secured (``--secure``), both servers accept only TLS with SCRAM passwords, Kafka enforces ACLs, and
the set-up below runs as Kafka's super user and PostgreSQL's owner (see ``infra/security.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from fraudstream.config import Settings
from fraudstream.infra.kafka import KafkaServer
from fraudstream.infra.kafka_access import ensure_access
from fraudstream.infra.migrations import migrate
from fraudstream.infra.mlflow import MlflowServer
from fraudstream.infra.postgres import PostgresServer
from fraudstream.infra.security import PG_OWNER_SECRET, LocalSecurity
from fraudstream.infra.topics import ensure_topics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalStack:
    kafka: KafkaServer
    postgres: PostgresServer
    settings: Settings
    security: LocalSecurity | None = None
    mlflow: MlflowServer | None = None

    @classmethod
    def from_settings(cls, settings: Settings, secure: bool = False) -> LocalStack:
        """The stack these settings describe; ``secure`` makes its certificates and passwords if missing."""
        security = None
        if secure:
            security = LocalSecurity(settings.data_dir)
            security.prepare()
        host, _, port = settings.kafka_bootstrap_servers.split(",")[0].rpartition(":")
        kafka = KafkaServer(
            cache_dir=settings.cache_dir,
            data_dir=settings.data_dir / "kafka",
            port=int(port),
            host=_loopback(host),
            security=None if security is None else security.broker(),
        )
        owner_password = (
            settings.pg_password.get_secret_value()
            if security is None
            else security.password(PG_OWNER_SECRET)
        )
        postgres = PostgresServer(
            data_dir=settings.data_dir,
            port=settings.pg_port,
            user=settings.pg_user,
            password=owner_password,
            database=settings.pg_database,
            host=_loopback(settings.pg_host),
            tls=None if security is None else security.postgres(),
        )
        if security is not None:
            settings = security.admin_settings(settings)
        return cls(
            kafka=kafka,
            postgres=postgres,
            settings=settings,
            security=security,
            mlflow=local_mlflow(settings),
        )

    def up(self, step: Callable[[str], None] = logger.info) -> None:
        """Bring everything up; idempotent. ``step`` is told each stage as it starts."""
        step("PostgreSQL: starting")
        self.postgres.start()
        step("PostgreSQL: applying migrations")
        settings = self.settings
        asyncio.run(
            migrate(
                settings.pg_dsn,
                reader=settings.pg_reader,
                writer=settings.pg_writer,
                retention_days=settings.retention_days,
            )
        )
        step("Kafka: resolving jars and starting")
        self.kafka.start()
        if self.security is not None:
            step("Kafka: creating the services' principals and ACLs")
            ensure_access(settings, self.security.kafka_passwords())
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
