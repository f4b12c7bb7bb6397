"""The Kafka module's reads against the session's real broker: offsets, a group's lag, reading to the end."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from fraudstream.config import Settings
from fraudstream.pipeline import kafka

pytestmark = pytest.mark.integration


@pytest.fixture
def topic(stack_settings: Settings) -> str:
    """A fresh three-partition topic: 3 messages in partition 0, 1 in partition 1, none in partition 2."""
    name = f"kafka-module-{uuid.uuid4().hex[:8]}"
    admin = kafka.admin(stack_settings)
    admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=1)])[name].result()
    producer = Producer(kafka.producer_config(stack_settings))
    for partition, value in [(0, b"a"), (0, b"b"), (1, b"c"), (0, b"d")]:
        producer.produce(name, value, partition=partition)
    assert producer.flush(10) == 0
    return name


def test_end_offsets_and_reading_a_topic_to_its_end(stack_settings, topic):
    with kafka.consumer(stack_settings, "kafka-module-test") as client:
        assert kafka.end_offsets(client, topic, 10) == {0: 3, 1: 1, 2: 0}

    messages = kafka.read_topic(stack_settings, topic, "kafka-module-test", 30)

    by_partition = {p: [m.value() for m in messages if m.partition() == p] for p in (0, 1, 2)}
    assert by_partition == {0: [b"a", b"b", b"d"], 1: [b"c"], 2: []}


def test_a_groups_lag_is_its_distance_to_the_end_and_asking_does_not_join_it(stack_settings, topic):
    group = f"kafka-module-{uuid.uuid4().hex[:8]}"
    with kafka.consumer(stack_settings, group) as member:
        member.commit(offsets=[TopicPartition(topic, 0, 2)], asynchronous=False)

    lag = kafka.group_lag(stack_settings, group, topic, 10)

    assert lag["lag"] == 1 + 1
    assert lag["partitions"]["0"] == {"end": 3, "committed": 2, "lag": 1}
    assert lag["partitions"]["1"] == {"end": 1, "committed": -1, "lag": 1}
    admin = kafka.admin(stack_settings)  # kept until its futures resolve: a destroyed client's fail or hang
    assert admin.describe_consumer_groups([group])[group].result(timeout=10).members == []


def test_lag_of_a_missing_topic_is_an_error_not_an_exception(stack_settings):
    lag = kafka.group_lag(stack_settings, "nobody", "no-such-topic", 5)

    assert lag["topic"] == "no-such-topic" and "error" in lag
