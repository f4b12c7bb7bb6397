"""What the Kafka page shows: topics with their offsets, consumer groups with their lag, the last messages.

It stands in for the seed's Kafka UI container. Every function raises ``KafkaUnavailable`` when the
brokers cannot be reached, so the page can say so instead of failing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from fraudstream.config import Settings
from fraudstream.ops.status import group_lag

TIMEOUT_S = 5.0
BROWSER_GROUP = "fraudstream-ui-browser"
TOPIC_COLUMNS = ["topic", "partitions", "end_offsets", "retained_offsets"]
GROUP_COLUMNS = ["group", "state", "topic", "lag", "partition_lag"]
MESSAGE_COLUMNS = ["partition", "offset", "timestamp", "key", "value"]


class KafkaUnavailable(RuntimeError):
    """The brokers could not be reached or refused the request; the message says which and why."""


@dataclass(frozen=True)
class KafkaOverview:
    brokers: int
    topics: pd.DataFrame
    groups: pd.DataFrame


def _connection(settings: Settings) -> dict[str, object]:
    return {**settings.kafka_client_config(), "socket.connection.setup.timeout.ms": 3000}


def _unavailable(settings: Settings, error: Exception) -> KafkaUnavailable:
    return KafkaUnavailable(f"Kafka at {settings.kafka_bootstrap_servers} is unavailable: {error}")


def require_topic(settings: Settings, topic: str, timeout: float = 3.0) -> None:
    """Raise KafkaUnavailable unless the brokers answer and ``topic`` exists."""
    admin = AdminClient(_connection(settings))
    try:
        found = admin.list_topics(topic, timeout=timeout).topics.get(topic)
    except KafkaException as error:
        raise _unavailable(settings, error) from error
    if found is None or found.error is not None:
        raise KafkaUnavailable(f"topic {topic} does not exist on {settings.kafka_bootstrap_servers}")


def overview(settings: Settings, timeout: float = TIMEOUT_S) -> KafkaOverview:
    """Brokers, the non-internal topics with their offsets, and every consumer group's lag.

    ``retained_offsets`` counts offsets, not messages: transaction markers take offsets too.
    """
    admin = AdminClient(_connection(settings))
    reader = Consumer({**_connection(settings), "group.id": BROWSER_GROUP, "enable.auto.commit": False})
    try:
        metadata = admin.list_topics(timeout=timeout)
        names = sorted(name for name in metadata.topics if not name.startswith("__"))
        topics = pd.DataFrame(
            [_topic_row(reader, name, sorted(metadata.topics[name].partitions), timeout) for name in names],
            columns=TOPIC_COLUMNS,
        )
        groups = consumer_groups(settings, admin, timeout)
    except KafkaException as error:
        raise _unavailable(settings, error) from error
    finally:
        reader.close()
    return KafkaOverview(brokers=len(metadata.brokers), topics=topics, groups=groups)


def _topic_row(reader: Consumer, topic: str, partitions: list[int], timeout: float) -> list[object]:
    marks = [reader.get_watermark_offsets(TopicPartition(topic, p), timeout) for p in partitions]
    return [topic, len(partitions), [high for _, high in marks], sum(high - low for low, high in marks)]


def consumer_groups(settings: Settings, admin: AdminClient, timeout: float = TIMEOUT_S) -> pd.DataFrame:
    """One row per (group, topic it has committed offsets on), with the lag from ``status.group_lag``."""
    listing = admin.list_consumer_groups(request_timeout=timeout).result()
    rows = []
    for group in sorted(listing.valid, key=lambda g: g.group_id):
        state = group.state.name.lower() if group.state is not None else ""
        for topic in _committed_topics(admin, group.group_id, timeout):
            lag = group_lag(settings, admin, group.group_id, topic, timeout)
            partition_lag = [p["lag"] for p in lag.get("partitions", {}).values()]
            rows.append([group.group_id, state, topic, lag.get("lag"), partition_lag])
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def _committed_topics(admin: AdminClient, group: str, timeout: float) -> list[str]:
    request = [ConsumerGroupTopicPartitions(group)]
    result = admin.list_consumer_group_offsets(request, request_timeout=timeout)[group].result()
    return sorted({tp.topic for tp in result.topic_partitions})


def last_messages(settings: Settings, topic: str, count: int, timeout: float = TIMEOUT_S) -> pd.DataFrame:
    """The ``count`` newest committed messages of ``topic`` (all partitions), newest first.

    Each partition is read from ``end - count`` to its end with read_committed isolation, so aborted
    transactional writes never show; the newest ``count`` across partitions are kept.
    """
    consumer = Consumer(
        {
            **_connection(settings),
            "group.id": BROWSER_GROUP,
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    try:
        starts = _start_positions(consumer, topic, count, timeout)
        messages = _read_to_end(consumer, starts, timeout) if starts else []
    except KafkaException as error:
        raise _unavailable(settings, error) from error
    finally:
        consumer.close()
    frame = pd.DataFrame([_message_row(m) for m in messages], columns=MESSAGE_COLUMNS)
    return frame.sort_values(["timestamp", "offset"], ascending=False).head(count).reset_index(drop=True)


def _start_positions(consumer: Consumer, topic: str, count: int, timeout: float) -> list[TopicPartition]:
    metadata = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
    if metadata is None or metadata.error is not None:
        raise KafkaException(f"topic {topic} not found")
    starts = []
    for partition in sorted(metadata.partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout)
        if high > low:
            starts.append(TopicPartition(topic, partition, max(low, high - count)))
    return starts


def _read_to_end(consumer: Consumer, starts: list[TopicPartition], timeout: float) -> list[Message]:
    consumer.assign(starts)
    pending = {tp.partition for tp in starts}
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=500, timeout=0.2):
            error = message.error()
            if error is None:
                messages.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                pending.discard(message.partition())
            else:
                raise KafkaException(error)
    return messages


def _message_row(message: Message) -> list[object]:
    _, millis = message.timestamp()
    return [
        message.partition(),
        message.offset(),
        pd.Timestamp(millis, unit="ms", tz="UTC"),
        _text(message.key()),
        _text(message.value()),
    ]


def _text(raw: bytes | None) -> str | None:
    return raw.decode("utf-8", errors="replace") if raw is not None else None
