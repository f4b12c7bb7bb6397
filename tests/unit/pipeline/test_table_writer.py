"""The table writer's sequencing against recording doubles of the Kafka clients and the table: rows, then
dead letters, then the commit (in the background, in order); a commit retried through an outage, given
up after a rebalance. The real servers are in tests/integration/test_labels.py,
tests/integration/test_commit_given_up.py and the sink fault tests.
"""

from __future__ import annotations

import asyncio

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaConnectionError
from prometheus_client import REGISTRY

from fraudstream.config import Settings
from fraudstream.contracts.messages import BadMessage
from fraudstream.pipeline.labels import LabelsConsumer
from fraudstream.pipeline.table_writer import Table, TableWriter, decode_records

TOPIC = "things"
P0, P1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)


def record(partition: int, offset: int, value: bytes) -> ConsumerRecord:
    return ConsumerRecord(TOPIC, partition, offset, 0, 0, b"key", value, None, 3, len(value), [])


class Log(list):
    """The events of one test, in the order the doubles saw them."""


class RecordingConsumer:
    """Fails its first commits with ``errors``; a commit waits for ``release`` when one is given."""

    def __init__(self, log: Log, *errors: Exception, release: asyncio.Event | None = None) -> None:
        self.log = log
        self.errors = list(errors)
        self.release = release
        self.attempts = 0
        self.positions: dict[TopicPartition, int] = {}
        self.assigned = {P0, P1}

    async def commit(self, offsets: dict) -> None:
        self.attempts += 1
        if self.release is not None:
            await self.release.wait()
        if self.errors:
            raise self.errors.pop(0)
        self.log.append(("commit", dict(offsets)))

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def highwater(self, tp: TopicPartition) -> int:
        return 100

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]


class RecordingProducer:
    def __init__(self, log: Log) -> None:
        self.log = log

    async def send(self, topic: str, value: bytes, key: bytes, headers: list) -> asyncio.Future:
        self.log.append(("dead letter", topic, value, dict(headers)["error"].decode()))
        acknowledged = asyncio.get_running_loop().create_future()
        acknowledged.set_result(None)
        return acknowledged


def to_row(record: ConsumerRecord) -> tuple:
    if record.value == b"bad":
        raise BadMessage("not a thing")
    return (record.value.decode(),)


def writer(log: Log, service: str) -> TableWriter:
    async def write(pool: object, rows: list[tuple]) -> None:
        log.append(("write", rows))

    table = Table(
        service=service,
        topic=TOPIC,
        group="things-writer",
        dead_letter_topic=f"{TOPIC}.dlq",
        decode=lambda records: decode_records(records, to_row),
        write=write,
        max_records=10,
    )
    return TableWriter(Settings(), table)


def test_a_batch_is_written_then_its_dead_letters_sent_then_its_offsets_committed():
    log = Log()
    records = {P0: [record(0, 5, b"a"), record(0, 6, b"bad")], P1: [record(1, 9, b"b")]}

    async def scenario() -> None:
        table_writer = writer(log, "sequence")
        await table_writer.handle(records, RecordingConsumer(log), RecordingProducer(log), pool=None)
        await table_writer.commit_settled()

    asyncio.run(scenario())

    assert log == [
        ("write", [("a",), ("b",)]),
        ("dead letter", f"{TOPIC}.dlq", b"bad", "not a thing"),
        ("commit", {P0: 7, P1: 10}),
    ]


def test_the_commit_runs_in_the_background_and_the_next_one_waits_for_it():
    log = Log()

    async def scenario() -> list:
        release = asyncio.Event()
        consumer = RecordingConsumer(log, release=release)
        table_writer = writer(log, "background")
        first = table_writer.handle({P0: [record(0, 1, b"a")]}, consumer, RecordingProducer(log), None)
        await asyncio.wait_for(first, timeout=5)  # does not wait for its commit
        seen_before_release = list(log)  # the batch is done, its commit still in flight
        second = asyncio.create_task(
            table_writer.handle({P0: [record(0, 2, b"b")]}, consumer, RecordingProducer(log), None)
        )
        await asyncio.sleep(0.01)
        seen_while_waiting = list(log)  # the second batch is written, its commit waits for the first
        release.set()
        await second
        await table_writer.commit_settled()
        return [seen_before_release, seen_while_waiting]

    before, waiting = asyncio.run(scenario())

    assert before == [("write", [("a",)])]
    assert waiting == [("write", [("a",)]), ("write", [("b",)])]
    assert log[2:] == [("commit", {P0: 2}), ("commit", {P0: 3})]


def test_a_commit_is_retried_until_the_broker_is_back():
    consumer = RecordingConsumer(Log(), KafkaConnectionError("broker down"))

    async def scenario() -> None:
        labels = LabelsConsumer(Settings())
        await labels.commit(consumer, {P0: 42})
        await labels.commit_settled()

    asyncio.run(scenario())

    assert (consumer.attempts, consumer.log) == (2, [("commit", {P0: 42})])


def test_a_commit_refused_after_a_rebalance_is_given_up_and_committed_again_when_idle():
    log = Log()
    consumer = RecordingConsumer(log, CommitFailedError("rebalanced"))
    consumer.positions = {P0: 42, P1: 7}

    async def scenario() -> None:
        table_writer = writer(log, "given-up")
        await table_writer.commit(consumer, {P0: 42})
        await table_writer.commit_settled()
        assert (consumer.attempts, log) == (1, [])  # not retried
        await table_writer.commit_idle_positions(consumer)
        await table_writer.commit_settled()
        await table_writer.commit_idle_positions(consumer)  # nothing moved: nothing to commit
        await table_writer.commit_settled()

    asyncio.run(scenario())

    assert log == [("commit", {P0: 42, P1: 7})]


def test_two_writers_in_one_process_have_their_own_metrics():
    one, two = writer(Log(), "one"), writer(Log(), "two")

    one.metrics.record_batch(3, 2, 1, 0.01)
    two.metrics.record_batch(5, 5, 0, 0.01)

    def consumed(service: str) -> float | None:
        return REGISTRY.get_sample_value("fraudstream_messages_in_total", {"service": service})

    assert (consumed("one"), consumed("two")) == (3, 5)
