"""Every Kafka client of the project, configured from ``Settings`` in one place, and the reads that the
services, status, bench, the UI and the tests share: end and committed offsets, a consumer group's lag,
reading partitions to their end, and a local service's /healthz.

Committed offsets are fetched by a consumer of the group, never by ``AdminClient``'s
``list_consumer_group_offsets``: librdkafka (2.16 and before, issue 5040) dereferences the admin
handle's missing consumer group when the coordinator answers NOT_COORDINATOR, which a broker that is
still creating ``__consumer_offsets`` does, and the process dies with SIGSEGV.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from fraudstream.config import Settings
from fraudstream.errors import ReadToEndTimeout

# Short-lived clients (status, the UI, tests) give up on a connection to a down broker after 3 s, not
# librdkafka's 30 s; the services keep the default.
SHORT_LIVED: dict[str, object] = {"socket.connection.setup.timeout.ms": 3000}


def client_config(settings: Settings) -> dict[str, object]:
    """librdkafka connection settings (brokers, SASL, SSL) shared by every confluent-kafka client."""
    config: dict[str, object] = {
        "bootstrap.servers": settings.kafka_bootstrap_servers,
        "security.protocol": settings.kafka_security_protocol,
    }
    password = settings.kafka_sasl_password
    optional = {
        "sasl.mechanism": settings.kafka_sasl_mechanism,
        "sasl.username": settings.kafka_sasl_username,
        "sasl.password": password.get_secret_value() if password is not None else None,
        "ssl.ca.location": settings.kafka_ssl_cafile,
    }
    config.update({key: value for key, value in optional.items() if value is not None})
    return config


def producer_config(settings: Settings, **extra: object) -> dict[str, object]:
    """An idempotent, fully acknowledged producer using Java's partitioner, so keys land where the
    Kafka ecosystem (and the detector's state changelog) expects them. ``extra`` adds or overrides."""
    return {
        **client_config(settings),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        "partitioner": "murmur2_random",
        **extra,
    }


def consumer_config(settings: Settings, group: str, **extra: object) -> dict[str, object]:
    """A consumer of ``group`` that commits only when told to; ``extra`` adds or overrides."""
    return {**client_config(settings), "group.id": group, "enable.auto.commit": False, **extra}


def reader_config(settings: Settings, group: str, **extra: object) -> dict[str, object]:
    """A consumer that reads committed data to the end of its partitions (see ``read_to_end``);
    ``extra`` adds or overrides."""
    return consumer_config(
        settings,
        group,
        **{
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            **SHORT_LIVED,
            **extra,
        },
    )


# A reader of a large partition (a detector's state restore): fetches of 64 MiB instead of librdkafka's
# 1 MiB per partition, fewer round trips for hundreds of megabytes.
BULK_READ: dict[str, object] = {
    "max.partition.fetch.bytes": 64 * 1024 * 1024,
    "fetch.max.bytes": 128 * 1024 * 1024,
    "queued.max.messages.kbytes": 256 * 1024,
    "receive.message.max.bytes": 130 * 1024 * 1024,
}


def admin(settings: Settings) -> AdminClient:
    """An admin client for short-lived use (``SHORT_LIVED``)."""
    return AdminClient({**client_config(settings), **SHORT_LIVED})


@contextmanager
def consumer(settings: Settings, group: str, **extra: object) -> Iterator[Consumer]:
    """A consumer (``consumer_config``) closed on exit, so no request of it outlives the block."""
    client = Consumer(consumer_config(settings, group, **{**SHORT_LIVED, **extra}))
    try:
        yield client
    finally:
        client.close()


@contextmanager
def reader(settings: Settings, group: str, **extra: object) -> Iterator[Consumer]:
    """A consumer configured by ``reader_config``, closed on exit."""
    client = Consumer(reader_config(settings, group, **extra))
    try:
        yield client
    finally:
        client.close()


def aiokafka_config(settings: Settings) -> dict[str, object]:
    """The same connection settings as ``client_config``, as aiokafka's keyword arguments."""
    config: dict[str, object] = {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        password = settings.kafka_sasl_password
        config.update(
            sasl_mechanism=settings.kafka_sasl_mechanism,
            sasl_plain_username=settings.kafka_sasl_username,
            sasl_plain_password=password.get_secret_value() if password is not None else None,
        )
    if settings.kafka_ssl_cafile:
        from aiokafka.helpers import create_ssl_context

        config["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile)
    return config


def partitions(client: Consumer | AdminClient, topic: str, timeout: float) -> list[int]:
    """The partition numbers of ``topic``; raises KafkaException if it does not exist."""
    found = client.list_topics(topic, timeout=timeout).topics.get(topic)
    if found is None or found.error is not None:
        error = found.error if found is not None else f"topic {topic} not found"
        raise KafkaException(error)
    return sorted(found.partitions)


def watermarks(
    client: Consumer, topic: str, numbers: list[int], timeout: float
) -> dict[int, tuple[int, int]]:
    """(low, high) offsets of these partitions of ``topic``."""
    return {p: client.get_watermark_offsets(TopicPartition(topic, p), timeout) for p in numbers}


def end_offsets(client: Consumer, topic: str, timeout: float) -> dict[int, int]:
    """The end offset (the next offset to be written) per partition of ``topic``."""
    marks = watermarks(client, topic, partitions(client, topic, timeout), timeout)
    return {partition: high for partition, (_, high) in marks.items()}


def committed_offsets(
    client: Consumer, topic_partitions: list[TopicPartition], timeout: float
) -> dict[tuple[str, int], int]:
    """The committed offset per (topic, partition) asked for that has one, of ``client``'s group.

    ``client`` is a consumer of the group that never subscribes, so it neither joins nor disturbs it.
    """
    if not topic_partitions:
        return {}
    found = client.committed(topic_partitions, timeout=timeout)
    return {(tp.topic, tp.partition): tp.offset for tp in found if tp.error is None and tp.offset >= 0}


def lag_report(topic: str, ends: dict[int, int], committed: dict[int, int]) -> dict[str, Any]:
    """End offset, committed offset (-1: none) and lag per partition of ``topic``, and their total lag."""
    report = {}
    for partition, end in sorted(ends.items()):
        offset = committed.get(partition, -1)
        report[str(partition)] = {"end": end, "committed": offset, "lag": end - max(offset, 0)}
    return {"topic": topic, "lag": sum(p["lag"] for p in report.values()), "partitions": report}


def group_lag(settings: Settings, group: str, topic: str, timeout: float) -> dict[str, Any]:
    """``lag_report`` of consumer ``group`` on ``topic``, or the error that kept it from being read."""
    try:
        with consumer(settings, group) as client:
            ends = end_offsets(client, topic, timeout)
            asked = [TopicPartition(topic, partition) for partition in ends]
            committed = committed_offsets(client, asked, timeout)
    except KafkaException as error:
        return {"topic": topic, "error": str(error)}
    return lag_report(topic, ends, {partition: offset for (_, partition), offset in committed.items()})


def read_to_end(client: Consumer, starts: list[TopicPartition], timeout: float) -> list[Message]:
    """Every message from ``starts`` to the end of those partitions, in order per partition.

    ``client`` must be configured by ``reader_config`` (its end-of-partition events end the read);
    raises KafkaException on a Kafka error, ReadToEndTimeout if a partition's end is not reached in
    ``timeout``.
    """
    client.assign(starts)
    pending = {(tp.topic, tp.partition) for tp in starts}
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    while pending and (left := deadline - time.monotonic()) > 0:
        for message in client.consume(num_messages=10_000, timeout=min(0.5, left)):
            error = message.error()
            if error is None:
                messages.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                pending.discard((message.topic(), message.partition()))
            else:
                raise KafkaException(error)
    if pending:
        detail = f"partitions {sorted(pending)} not read to their end in {timeout:.0f} s"
        raise ReadToEndTimeout(detail)
    return messages


def next_batch(
    consumer: Consumer, max_messages: int, timeout_s: float, linger_s: float = 0.0
) -> list[Message]:
    """Wait up to ``timeout_s`` for one message, then take what else comes within ``linger_s`` (at once
    what is already fetched), up to ``max_messages``: small batches when traffic is light, full ones
    under load; a linger trades that much latency for fewer, larger batches at everyday rates."""
    first = consumer.consume(1, timeout_s)
    if not first:
        return first
    return first + consumer.consume(max_messages - 1, linger_s)


def next_offsets(messages: list[Message]) -> list[TopicPartition]:
    """The offset after each partition's last message (a partition's messages arrive in offset order):
    what a transaction commits for them."""
    last = {(message.topic(), message.partition()): message.offset() for message in messages}
    return [TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()]


def read_topic(settings: Settings, topic: str, group: str, timeout: float) -> list[Message]:
    """Every committed message of ``topic``, from the start of each partition to its end."""
    with reader(settings, group) as client:
        starts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions(client, topic, timeout)]
        return read_to_end(client, starts, timeout)


def service_health(port: int, timeout: float) -> dict[str, Any]:
    """A local service's /healthz (readiness, partitions, last batch age) with ``running``, or that
    nothing answers on ``port``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=timeout) as reply:
            return {"running": True, **orjson.loads(reply.read())}
    except urllib.error.HTTPError as error:  # 503: running, not ready
        return {"running": True, **orjson.loads(error.read())}
    except (OSError, ValueError):
        return {"running": False, "ready": False, "detail": f"nothing answers on port {port}"}
