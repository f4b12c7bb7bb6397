"""The local stack of `fraudstream up`: PostgreSQL and Kafka started, schema migrated, topics created.

Secured (``--secure``), both servers accept only TLS with SCRAM passwords, Kafka enforces ACLs, and
the set-up below runs as Kafka's super user and PostgreSQL's owner (see ``infra/security.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException

from fraudstream.config import Settings
from fraudstream.infra.kafka import KafkaCluster, local_cluster, stop_every_node
from fraudstream.infra.kafka_access import ensure_access
from fraudstream.infra.migrations import migrate
from fraudstream.infra.mlflow import MlflowServer
from fraudstream.infra.postgres import PostgresServer
from fraudstream.infra.process import InfraError, wait_until
from fraudstream.infra.security import PG_OWNER_SECRET, LocalSecurity
from fraudstream.infra.topics import ensure_topics
from fraudstream.pipeline import kafka

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LocalStack:
    kafka: KafkaCluster
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
        kafka = local_cluster(
            settings.cache_dir,
            settings.data_dir / "kafka",
            _node_addresses(settings),
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
        step(f"Kafka: waiting for its {len(self.kafka.nodes)} broker(s) to register")
        wait_for_brokers(settings, len(self.kafka.nodes), self.kafka.log_files)
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
        stop_every_node(self.settings.data_dir / "kafka")
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


def wait_for_brokers(settings: Settings, count: int, log_files: list[Path], timeout: float = 90.0) -> None:
    """Until the cluster's metadata lists ``count`` brokers: a topic replicated three times can be
    created only once three brokers have registered with the controller."""

    def registered() -> bool:
        try:
            return len(kafka.admin(settings).list_topics(timeout=5).brokers) >= count
        except KafkaException:
            return False

    wait_until(registered, timeout, f"{count} Kafka brokers", *log_files)


def _node_addresses(settings: Settings) -> list[tuple[str, int]]:
    """(host, port) of each local node: the first ``kafka_brokers`` bootstrap addresses."""
    addresses = settings.kafka_bootstrap_servers.split(",")
    if len(addresses) < settings.kafka_brokers:
        raise InfraError(
            f"FRAUDSTREAM_KAFKA_BROKERS is {settings.kafka_brokers} but "
            f"FRAUDSTREAM_KAFKA_BOOTSTRAP_SERVERS lists {len(addresses)} address(es): list one, or them all"
        )
    nodes = []
    for address in addresses[: settings.kafka_brokers]:
        host, _, port = address.strip().rpartition(":")
        nodes.append((_loopback(host), int(port)))
    return nodes


def _loopback(host: str) -> str:
    return "127.0.0.1" if host in ("localhost", "") else host
