"""Health of the running system, as `fraudstream status` shows it: Kafka, topics, lag, PostgreSQL,
MLflow, and the detector's warnings about its models (registry unreachable, drift)."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from typing import Any

import asyncpg
from confluent_kafka import KafkaException
from confluent_kafka.admin import TopicMetadata

from fraudstream.config import Settings
from fraudstream.infra.topics import topic_specs
from fraudstream.pipeline import kafka
from fraudstream.pipeline.partitions import partitions


def collect(settings: Settings, timeout: float = 5.0) -> dict[str, Any]:
    """Everything `status` reports; ``healthy`` is true only when Kafka and PostgreSQL are.

    Services are reported, not counted in ``healthy``: `up` alone starts only the servers.
    """
    brokers = kafka_status(settings, timeout)
    postgres = asyncio.run(postgres_status(settings, timeout))
    detector = kafka.service_health(settings.detector_metrics_port, timeout)
    registry = registry_status(settings, timeout)
    return {
        "healthy": brokers["healthy"] and postgres["healthy"] and registry["healthy"],
        "fraud_scores_rows": postgres.get("fraud_scores_rows", 0),
        "kafka": brokers,
        "postgres": postgres,
        "mlflow": registry,
        "services": {
            "detector": detector,
            "sink": kafka.service_health(settings.sink_metrics_port, timeout),
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


def kafka_status(settings: Settings, timeout: float) -> dict[str, Any]:
    """Brokers, the project's topics with each partition's leader and in-sync replicas, and the groups'
    lag. Healthy when every expected broker is up and every topic has its partitions, each with a
    leader and all of its replicas in sync (an under-replicated partition is one broker from refusing
    writes, with ``min.insync.replicas`` 2 of 3)."""
    try:
        metadata = kafka.admin(settings).list_topics(timeout=timeout)
    except KafkaException as error:
        return {"healthy": False, "bootstrap": settings.kafka_bootstrap_servers, "error": str(error)}
    topics = {
        spec.name: topic_status(metadata.topics.get(spec.name), spec.partitions)
        for spec in topic_specs(settings)
    }
    groups = {
        settings.detector_group: settings.topic_transactions,
        settings.sink_group: settings.topic_scoring,
    }
    lag = {group: kafka.group_lag(settings, group, topic, timeout) for group, topic in groups.items()}
    brokers = [
        {
            "id": broker.id,
            "address": f"{broker.host}:{broker.port}",
            "controller": broker.id == metadata.controller_id,
        }
        for broker in sorted(metadata.brokers.values(), key=lambda broker: broker.id)
    ]
    under_replicated = [
        f"{name}[{partition}]"
        for name, topic in topics.items()
        for partition, state in topic["leaders"].items()
        if not state["in_sync"]
    ]
    return {
        "healthy": len(brokers) >= settings.kafka_brokers
        and not under_replicated
        and all(topic["ok"] for topic in topics.values()),
        "bootstrap": settings.kafka_bootstrap_servers,
        "brokers": brokers,
        "expected_brokers": settings.kafka_brokers,
        "under_replicated": under_replicated,
        "topics": topics,
        "consumer_lag": lag,
    }


def topic_status(found: TopicMetadata | None, expected: int) -> dict[str, Any]:
    """A topic's partitions, each with its leader (-1: none), replicas and in-sync replicas; ``ok``
    when it has the expected partitions, every one led and fully in sync."""
    partitions = {} if found is None or found.error is not None else found.partitions
    leaders = {
        str(number): {
            "leader": partition.leader,
            "replicas": list(partition.replicas),
            "isr": list(partition.isrs),
            "in_sync": partition.leader >= 0 and set(partition.isrs) >= set(partition.replicas),
        }
        for number, partition in sorted(partitions.items())
    }
    ok = len(leaders) == expected and all(state["in_sync"] for state in leaders.values())
    return {"partitions": len(leaders), "ok": ok, "leaders": leaders}


# Counted from the daily tally the triggers keep (migration 0007): no scan of months of scores.
TALLY = (
    "SELECT coalesce(sum(scored), 0)::bigint AS rows, coalesce(sum(flagged), 0)::bigint AS flagged"
    " FROM fraud_scores_daily"
)


async def postgres_status(settings: Settings, timeout: float) -> dict[str, Any]:
    where = settings.pg_address
    try:
        connection = await asyncpg.connect(settings.pg_dsn, timeout=timeout)
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        return {"healthy": False, "database": where, "error": str(error) or repr(error)}
    try:
        tally = await connection.fetchrow(TALLY)
        days = await partitions(connection)
        migrations = await connection.fetchval("SELECT max(version) FROM schema_migrations")
    except asyncpg.PostgresError as error:
        return {"healthy": False, "database": where, "error": str(error)}
    finally:
        await connection.close()
    return {
        "healthy": True,
        "database": where,
        "fraud_scores_rows": tally["rows"],
        "flagged_rows": tally["flagged"],
        "partitions": {"count": days.count, "oldest": days.oldest, "newest": days.newest},
        "schema_version": migrations,
    }
