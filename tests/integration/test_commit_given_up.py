"""A commit that a rebalance made impossible, on the real broker: the table writer gives it up, leaves the
partition's committed offset to its new owner, and goes on."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from fraudstream.config import Settings
from fraudstream.infra.topics import ensure_topics
from fraudstream.pipeline import kafka
from fraudstream.pipeline.table_writer import Table, TableWriter, decode_records

pytestmark = pytest.mark.integration


def member(settings: Settings, group: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        settings.topic_scoring, group_id=group, enable_auto_commit=False, **kafka.aiokafka_config(settings)
    )


async def until(condition, *consumers: AIOKafkaConsumer, timeout_s: float = 60) -> None:
    """Poll ``consumers`` (which keeps them in the group's rebalances) until ``condition()``."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.gather(*(consumer.getmany(timeout_ms=100) for consumer in consumers))


def writer(settings: Settings, group: str) -> TableWriter:
    async def write(pool: object, rows: list[tuple]) -> None:
        raise AssertionError("this test writes no rows")

    table = Table("given-up", settings.topic_scoring, group, settings.dlq_scoring,
                  lambda records: decode_records(records, tuple), write, max_records=10)  # fmt: skip
    return TableWriter(settings, table)


def test_a_commit_for_a_partition_another_member_took_is_given_up(stack_settings, caplog):
    settings = stack_settings.scoped(f"given-up-{uuid.uuid4().hex[:6]}")
    ensure_topics(settings)
    group = f"given-up-{uuid.uuid4().hex[:6]}"

    async def scenario() -> tuple[set[TopicPartition], dict[TopicPartition, int | None]]:
        first, second = member(settings, group), member(settings, group)
        await first.start()
        try:
            await until(lambda: len(first.assignment()) == 3, first)
            await second.start()
            await until(lambda: second.assignment() and len(first.assignment()) < 3, first, second)
            taken = set(second.assignment())
            table_writer = writer(settings, group)
            await table_writer.commit(first, {tp: 1 for tp in taken})  # offsets read before the rebalance
            await asyncio.wait_for(table_writer.commit_settled(), 30)  # given up, not retried forever
            return taken, {tp: await second.committed(tp) for tp in taken}
        finally:
            await second.stop()
            await first.stop()

    with caplog.at_level(logging.WARNING, logger="fraudstream.pipeline.table_writer"):
        taken, committed = asyncio.run(scenario())

    assert taken
    assert committed == dict.fromkeys(taken)  # nothing committed over the new owner's partitions
    given_up = [record for record in caplog.records if record.getMessage() == "kafka commit given up"]
    assert len(given_up) == 1 and "is not assigned" in given_up[0].fields["error"]
