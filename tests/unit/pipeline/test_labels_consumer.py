"""The labels consumer's commit: retried through an outage, given up after a rebalance (the new owner
of the partitions writes the same labels again, which adds nothing)."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError

from fraudstream.config import Settings
from fraudstream.pipeline.labels import LabelsConsumer

OFFSETS = {TopicPartition("labels", 0): 42}


class RecordingConsumer:
    """Fails its first commits with ``errors``, then records the offsets it commits."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.attempts = 0
        self.committed: list[dict] = []

    async def commit(self, offsets: dict) -> None:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        self.committed.append(offsets)


def test_a_commit_is_retried_until_the_broker_is_back():
    consumer = RecordingConsumer(KafkaConnectionError("broker down"))

    asyncio.run(LabelsConsumer(Settings())._commit(consumer, OFFSETS))

    assert (consumer.attempts, consumer.committed) == (2, [OFFSETS])


def test_a_commit_refused_after_a_rebalance_is_not_retried():
    consumer = RecordingConsumer(CommitFailedError("rebalanced"))

    asyncio.run(LabelsConsumer(Settings())._commit(consumer, OFFSETS))

    assert (consumer.attempts, consumer.committed) == (1, [])
