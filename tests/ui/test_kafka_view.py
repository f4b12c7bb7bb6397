"""The Kafka page and its data access: against the session's real Kafka, and with no Kafka."""

from __future__ import annotations

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from fraudstream.config import Settings
from fraudstream.pipeline import kafka
from fraudstream.ui.kafka_view import last_messages, overview

BROWSE_TOPIC = "ui-test.browse"
START_MS = 1_700_000_000_000


@pytest.fixture(scope="module")
def browse_topic(stack_settings: Settings) -> str:
    """A two-partition topic holding messages 0..5, alternating partitions, one millisecond apart."""
    topic = NewTopic(BROWSE_TOPIC, num_partitions=2, replication_factor=1)
    admin = kafka.admin(stack_settings)  # kept until its futures resolve: a destroyed client's fail or hang
    admin.create_topics([topic])[BROWSE_TOPIC].result()
    producer = Producer(kafka.producer_config(stack_settings))
    for i in range(6):
        producer.produce(BROWSE_TOPIC, f"message {i}", f"key {i}", partition=i % 2, timestamp=START_MS + i)
    producer.flush(10)
    return BROWSE_TOPIC


def test_with_kafka_down_the_page_says_so(page, nothing_env):
    app = page("kafka_page.py").run()

    assert not app.exception
    assert f"Kafka at {nothing_env.kafka_bootstrap_servers} is unavailable" in app.error[0].value


@pytest.mark.integration
def test_the_last_messages_are_the_newest_across_partitions(stack_settings, browse_topic):
    messages = last_messages(stack_settings, browse_topic, 4)

    assert messages["value"].tolist() == ["message 5", "message 4", "message 3", "message 2"]
    assert messages["partition"].tolist() == [1, 0, 1, 0]
    assert messages["key"].iloc[0] == "key 5"


@pytest.mark.integration
def test_the_overview_has_topic_offsets(stack_settings, browse_topic):
    topics = overview(stack_settings).topics.set_index("topic")

    assert topics.loc[browse_topic, "end_offsets"] == [3, 3]
    assert topics.loc[browse_topic, "retained_offsets"] == 6
    assert not any(name.startswith("__") for name in topics.index)


@pytest.mark.integration
def test_the_page_lists_topics_and_reads_a_topic(page, stack_env, browse_topic):
    app = page("kafka_page.py").run()

    assert not app.exception and not app.error
    topics = app.dataframe[0].value.set_index("topic")
    assert topics.loc[stack_env.topic_transactions, "partitions"] == stack_env.topic_partitions
    assert topics.loc[stack_env.topic_scoring, "partitions"] == stack_env.topic_partitions

    app.selectbox(key="browse_topic").set_value(browse_topic)
    app.number_input(key="browse_count").set_value(2)
    app.button[1].click().run()

    assert app.dataframe[-1].value["value"].tolist() == ["message 5", "message 4"]
