"""Labels as a stream: publishing decisions to ``labels``, and the consumer writing them to ``fraud_labels``.

The consumer runs inside the sink process. Each batch is one idempotent insert
(``ON CONFLICT (label_id) DO NOTHING``: a replayed or repeated decision is one row of history), then the
dead letters are acknowledged, then the offsets are committed: nothing acknowledged is ever lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError
from confluent_kafka import KafkaException, Producer

from fraudstream.config import Settings
from fraudstream.contracts.messages import (
    BadMessage,
    LabelMessage,
    dead_letter_headers,
    decode_label,
    encoder,
)
from fraudstream.logs import fields
from fraudstream.pipeline import kafka
from fraudstream.pipeline.kafka import producer_config
from fraudstream.pipeline.producer import Progress
from fraudstream.pipeline.retry import retry_async
from fraudstream.telemetry import Readiness

logger = logging.getLogger(__name__)

INSERT = """
INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at, note)
SELECT * FROM unnest(
    $1::uuid[], $2::uuid[], $3::int2[], $4::text[], $5::text[], $6::timestamptz[], $7::text[]
)
ON CONFLICT (label_id) DO NOTHING
"""
DELIVERY_TIMEOUT_S = 30.0


def publish_labels(settings: Settings, labels: list[LabelMessage], progress: Progress | None = None) -> int:
    """Send ``labels`` to the labels topic (key = transaction id) and wait for every acknowledgement.

    Raises KafkaException when a label was not acknowledged; sending again is harmless (same label ids).
    """
    producer = Producer(producer_config(settings))
    failures: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    for done, label in enumerate(labels, start=1):
        _produce(producer, settings.topic_labels, label, delivered)
        if progress is not None:
            progress(done, len(labels))
    remaining = producer.flush(DELIVERY_TIMEOUT_S)
    if remaining:
        producer.purge()  # given up on: sending them again is harmless (same label ids)
        producer.poll(0)
        raise KafkaException(f"{remaining} label(s) not acknowledged in {DELIVERY_TIMEOUT_S:.0f} s")
    if failures:
        raise KafkaException(failures[0])
    return len(labels)


def _produce(producer: Producer, topic: str, label: LabelMessage, delivered: Callable) -> None:
    """Queue one label, waiting for room while the local queue is full (a large file)."""
    while True:
        try:
            producer.produce(
                topic, encoder.encode(label), str(label.transaction_id).encode(), on_delivery=delivered
            )
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)


@dataclass(frozen=True)
class Decoded:
    rows: list[tuple]
    dead: list[tuple[ConsumerRecord, str]]


def to_row(label: LabelMessage) -> tuple:
    return (
        label.label_id,
        label.transaction_id,
        label.label,
        label.source,
        label.author,
        label.at,
        label.note,
    )


def decode_records(records: list[ConsumerRecord]) -> Decoded:
    rows, dead = [], []
    for record in records:
        try:
            rows.append(to_row(decode_label(record.value)))
        except BadMessage as bad:
            dead.append((record, bad.reason))
    return Decoded(rows, dead)


class LabelsConsumer:
    """``labels`` -> ``fraud_labels``, exactly once in effect: idempotent insert, then commit."""

    def __init__(self, settings: Settings, max_records: int = 1000) -> None:
        self.settings = settings
        self.max_records = max_records
        self.readiness = Readiness()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            self.settings.topic_labels,
            group_id=self.settings.labels_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            **kafka.aiokafka_config(self.settings),
        )
        producer = AIOKafkaProducer(
            acks="all", enable_idempotence=True, **kafka.aiokafka_config(self.settings)
        )
        pool = await self._retry(self._connect_postgres, "postgres connect")
        await self._retry(consumer.start, "kafka consumer start")
        await self._retry(producer.start, "kafka producer start")
        logger.info("labels consumer started", extra=fields(topic=self.settings.topic_labels))
        try:
            while not self._stop.is_set():
                records = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
                self.readiness.assigned_partitions = [tp.partition for tp in consumer.assignment()]
                if records:
                    await self._handle(records, consumer, producer, pool)
                self.readiness.batch_done()
        finally:
            await consumer.stop()
            await producer.stop()
            await pool.close()

    async def _handle(
        self,
        records: dict[TopicPartition, list[ConsumerRecord]],
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        pool: asyncpg.Pool,
    ) -> None:
        decoded = decode_records([record for batch in records.values() for record in batch])
        if decoded.rows:
            await self._retry(
                lambda: pool.execute(INSERT, *zip(*decoded.rows, strict=True)), "postgres write"
            )
        await self._retry(lambda: self._dead_letters(producer, decoded.dead), "dead letters")
        offsets = {tp: batch[-1].offset + 1 for tp, batch in records.items()}
        await self._commit(consumer, offsets)
        logger.info("labels written", extra=fields(labels=len(decoded.rows), dead=len(decoded.dead)))

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Commit, unless the group rebalanced meanwhile: then the partitions' new owner reads these
        labels again, and writing them again adds nothing (their label ids)."""
        try:
            await self._retry(lambda: consumer.commit(offsets), "kafka commit")
        except CommitFailedError as error:
            logger.warning("offsets not committed after a rebalance", extra=fields(error=repr(error)))

    async def _dead_letters(self, producer: AIOKafkaProducer, dead: list[tuple[ConsumerRecord, str]]) -> None:
        sends = []
        for record, reason in dead:
            logger.warning(
                "dead letter", extra=fields(reason=reason, partition=record.partition, offset=record.offset)
            )
            headers = dead_letter_headers(reason, record.topic, record.partition, record.offset)
            sends.append(
                await producer.send(self.settings.dlq_labels, record.value, record.key, headers=headers)
            )
        if sends:
            await asyncio.gather(*sends)

    async def _connect_postgres(self) -> asyncpg.Pool:
        return await asyncpg.create_pool(self.settings.pg_dsn, min_size=1, max_size=1, timeout=10)

    async def _retry(self, action: Callable[[], Awaitable], what: str):
        return await retry_async(action, what, self._stop)
