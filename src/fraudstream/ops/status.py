"""Health of the running system, as `fraudstream status` shows it: Kafka, topics, lag, PostgreSQL,
MLflow, and the detector's warnings about its models (registry unreachable, drift)."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Any

import asyncpg
import orjson
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from fraudstream.config import Settings
from fraudstream.infra.topics import topic_specs


def collect(settings: Settings, timeout: float = 5.0) -> dict[str, Any]:
    """Everything `status` reports; ``healthy`` is true only when every component is."""
    kafka = kafka_status(settings, timeout)
    postgres = asyncio.run(postgres_status(settings, timeout))
    detector = service_health(settings.detector_metrics_port, timeout)
    registry = registry_status(settings, timeout)
    return {
        "healthy": kafka["healthy"] and postgres["healthy"] and registry["healthy"],
        "fraud_scores_rows": postgres.get("fraud_scores_rows", 0),
        "kafka": kafka,
        "postgres": postgres,
        "mlflow": registry,
        "services": {
            "detector": detector,
            "sink": service_health(settings.sink_metrics_port, timeout),
        },
        "warnings": model_warnings(detector),
    }


def registry_status(settings: Settings, timeout: float) -> dict[str, Any]:
    """The MLflow tracking server's /health; healthy when none is configured (nothing to check)."""
    uri = settings.mlflow_tracking_uri
    if not uri:
        return {"healthy": True, "tracking_uri": None, "detail": "no registry configured"}
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as reply:
            return {"healthy": reply.status == 200, "tracking_uri": uri, "detail": "ok"}
    except (OSError, urllib.error.URLError) as error:
        return {"healthy": False, "tracking_uri": uri, "detail": f"unreachable: {error}"}


def model_warnings(detector: dict[str, Any]) -> list[str]:
    """What the running detector says is wrong with its models: the registry, drift (PSI > warning)."""
    warnings = []
    registry = detector.get("model_registry")
    if registry not in (None, "ok", "not configured"):
        warnings.append(f"model registry: {registry}")
    drift = (detector.get("drift") or {}).get("warning")
    if drift:
        warnings.append(f"drift: {drift}")
    return warnings


def service_health(port: int, timeout: float) -> dict[str, Any]:
    """A local service's /healthz (readiness, partitions, last batch age), or that it is not running.

    Services are reported, not counted in ``healthy``: `up` alone starts only the servers.
    """
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as reply:
            return {"running": True, **orjson.loads(reply.read())}
    except urllib.error.HTTPError as error:
        return {"running": True, **orjson.loads(error.read())}
    except OSError:
        return {"running": False, "ready": False, "detail": f"nothing answers on port {port}"}


def kafka_status(settings: Settings, timeout: float) -> dict[str, Any]:
    admin = AdminClient({**settings.kafka_client_config(), "socket.connection.setup.timeout.ms": 3000})
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as error:
        return {"healthy": False, "bootstrap": settings.kafka_bootstrap_servers, "error": str(error)}
    topics = {}
    for spec in topic_specs(settings):
        found = metadata.topics.get(spec.name)
        partitions = len(found.partitions) if found is not None and found.error is None else 0
        topics[spec.name] = {"partitions": partitions, "ok": partitions == spec.partitions}
    groups = {
        settings.detector_group: settings.topic_transactions,
        settings.sink_group: settings.topic_scoring,
    }
    lag = {group: group_lag(settings, admin, group, topic, timeout) for group, topic in groups.items()}
    return {
        "healthy": all(topic["ok"] for topic in topics.values()),
        "bootstrap": settings.kafka_bootstrap_servers,
        "brokers": len(metadata.brokers),
        "topics": topics,
        "consumer_lag": lag,
    }


def group_lag(
    settings: Settings, admin: AdminClient, group: str, topic: str, timeout: float
) -> dict[str, Any]:
    """Committed offset and end offset per partition of ``topic`` for consumer ``group``."""
    request = [ConsumerGroupTopicPartitions(group)]
    try:
        result = admin.list_consumer_group_offsets(request, request_timeout=timeout)[group].result()
        committed = {tp.partition: tp.offset for tp in result.topic_partitions if tp.topic == topic}
    except KafkaException as error:
        return {"topic": topic, "error": str(error)}
    reader = Consumer({**settings.kafka_client_config(), "group.id": f"{group}-status"})
    try:
        partitions = {}
        metadata = reader.list_topics(topic, timeout=timeout).topics.get(topic)
        for partition in sorted(metadata.partitions if metadata else []):
            end = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout)[1]
            offset = committed.get(partition, -1)
            partitions[str(partition)] = {"end": end, "committed": offset, "lag": end - max(offset, 0)}
    finally:
        reader.close()
    return {"topic": topic, "lag": sum(p["lag"] for p in partitions.values()), "partitions": partitions}


async def postgres_status(settings: Settings, timeout: float) -> dict[str, Any]:
    where = f"{settings.pg_host}:{settings.pg_port}/{settings.pg_database}"
    try:
        connection = await asyncpg.connect(settings.pg_dsn, timeout=timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        return {"healthy": False, "database": where, "error": str(error) or repr(error)}
    try:
        rows = await connection.fetchval("SELECT count(*) FROM fraud_scores")
        flagged = await connection.fetchval("SELECT count(*) FROM fraud_scores WHERE fraud_flag = 1")
        migrations = await connection.fetchval("SELECT max(version) FROM schema_migrations")
    except asyncpg.PostgresError as error:
        return {"healthy": False, "database": where, "error": str(error)}
    finally:
        await connection.close()
    return {
        "healthy": True,
        "database": where,
        "fraud_scores_rows": rows,
        "flagged_rows": flagged,
        "schema_version": migrations,
    }
