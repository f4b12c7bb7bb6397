"""What the Kafka page shows: topics with their offsets, consumer groups with their lag, the last messages.

It stands in for the seed's Kafka UI container. Every function raises ``KafkaUnavailable`` when the
brokers cannot be reached, so the page can say so instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from fraudstream.config import Settings
from fraudstream.errors import ReadToEndTimeout
from fraudstream.pipeline import kafka

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


def _unavailable(settings: Settings, error: Exception) -> KafkaUnavailable:
    return KafkaUnavailable(f"Kafka at {settings.kafka_bootstrap_servers} is unavailable: {error}")


def require_topic(settings: Settings, topic: str, timeout: float = 3.0) -> None:
    """Raise KafkaUnavailable unless the brokers answer and ``topic`` exists."""
    try:
        found = kafka.admin(settings).list_topics(topic, timeout=timeout).topics.get(topic)
    except KafkaException as error:
        raise _unavailable(settings, error) from error
    if found is None or found.error is not None:
        raise KafkaUnavailable(f"topic {topic} does not exist on {settings.kafka_bootstrap_servers}")


def overview(settings: Settings, timeout: float = TIMEOUT_S) -> KafkaOverview:
    """Brokers, the non-internal topics with their offsets, and every consumer group's lag.

    ``retained_offsets`` counts offsets, not messages: transaction markers take offsets too.
    """
    admin = kafka.admin(settings)
    try:
        with kafka.consumer(settings, BROWSER_GROUP) as reader:
            metadata = admin.list_topics(timeout=timeout)
            names = sorted(name for name in metadata.topics if not name.startswith("__"))
            marks = {
                name: kafka.watermarks(reader, name, sorted(metadata.topics[name].partitions), timeout)
                for name in names
            }
        groups = consumer_groups(settings, admin, marks, timeout)
    except KafkaException as error:
        raise _unavailable(settings, error) from error
    topics = pd.DataFrame([_topic_row(name, marks[name]) for name in names], columns=TOPIC_COLUMNS)
    return KafkaOverview(brokers=len(metadata.brokers), topics=topics, groups=groups)


def _topic_row(topic: str, marks: dict[int, tuple[int, int]]) -> list[object]:
    return [
        topic,
        len(marks),
        [high for _, high in marks.values()],
        sum(high - low for low, high in marks.values()),
    ]


def consumer_groups(
    settings: Settings, admin: AdminClient, marks: dict[str, dict[int, tuple[int, int]]], timeout: float
) -> pd.DataFrame:
    """One row per (group, topic of ``marks`` it has committed offsets on), with its lag."""
    listing = admin.list_consumer_groups(request_timeout=timeout).result()
    asked = [
        TopicPartition(topic, partition) for topic, partitions in marks.items() for partition in partitions
    ]
    rows = []
    for group in sorted(listing.valid, key=lambda g: g.group_id):
        state = group.state.name.lower() if group.state is not None else ""
        with kafka.consumer(settings, group.group_id) as member:
            committed = kafka.committed_offsets(member, asked, timeout)
        for topic in sorted({topic for topic, _ in committed}):
            ends = {partition: high for partition, (_, high) in marks[topic].items()}
            offsets = {partition: offset for (name, partition), offset in committed.items() if name == topic}
            lag = kafka.lag_report(topic, ends, offsets)
            partition_lag = [p["lag"] for p in lag["partitions"].values()]
            rows.append([group.group_id, state, topic, lag["lag"], partition_lag])
    return pd.DataFrame(rows, columns=GROUP_COLUMNS)


def last_messages(settings: Settings, topic: str, count: int, timeout: float = TIMEOUT_S) -> pd.DataFrame:
    """The ``count`` newest committed messages of ``topic`` (all partitions), newest first.

    Each partition is read from ``end - count`` to its end with read_committed isolation, so aborted
    transactional writes never show; the newest ``count`` across partitions are kept.
    """
    try:
        with kafka.reader(settings, BROWSER_GROUP) as reader:
            starts = _start_positions(reader, topic, count, timeout)
            messages = kafka.read_to_end(reader, starts, timeout) if starts else []
    except (KafkaException, ReadToEndTimeout) as error:
        raise _unavailable(settings, error) from error
    frame = pd.DataFrame([_message_row(m) for m in messages], columns=MESSAGE_COLUMNS)
    return frame.sort_values(["timestamp", "offset"], ascending=False).head(count).reset_index(drop=True)


def _start_positions(reader: Consumer, topic: str, count: int, timeout: float) -> list[TopicPartition]:
    marks = kafka.watermarks(reader, topic, kafka.partitions(reader, topic, timeout), timeout)
    return [
        TopicPartition(topic, partition, max(low, high - count))
        for partition, (low, high) in marks.items()
        if high > low
    ]


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
