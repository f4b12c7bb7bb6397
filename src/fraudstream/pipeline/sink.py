"""The sink: consumes ``scoring`` (aiokafka) and writes ``fraud_scores`` (asyncpg), batch by batch.

Each batch is one ``INSERT ... SELECT FROM unnest(<column arrays>) ON CONFLICT DO NOTHING``: one
round trip to PostgreSQL, and a replayed message never duplicates or fails. Kafka offsets are
committed only after that statement and the dead letters are acknowledged: nothing acknowledged is
ever lost. Failures of PostgreSQL and Kafka are retried (``pipeline.retry``), except a commit that a
rebalance made impossible: that commit is given up, and the partitions' new owner re-reads them from
the last committed offset (the rows are idempotent).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from fraudstream.config import Settings
from fraudstream.contracts.messages import (
    BadMessage,
    ScoreMessage,
    dead_letter_headers,
    decode_score,
    encoder,
)
from fraudstream.logs import fields
from fraudstream.pipeline import kafka
from fraudstream.pipeline.retry import retry_async, worth_retrying
from fraudstream.telemetry import Readiness, ServiceMetrics

logger = logging.getLogger(__name__)

# The columns a row of ``to_row`` fills, with their PostgreSQL types.
COLUMN_TYPES = {
    "transaction_id": "uuid",
    "score": "float8",
    "fraud_flag": "int4",
    "model_version": "text",
    "reasons": "jsonb",
    "transaction": "jsonb",
    "produced_at": "timestamptz",
    "shadow_score": "float8",
    "shadow_version": "text",
    "decision": "text",
    "rules": "jsonb",
}
COLUMNS = tuple(COLUMN_TYPES)
ARRAYS = ", ".join(f"${number}::{kind}[]" for number, kind in enumerate(COLUMN_TYPES.values(), start=1))
UPSERT = f"""
INSERT INTO fraud_scores ({", ".join(COLUMNS)}, scored_at)
SELECT DISTINCT ON (transaction_id) *, clock_timestamp() FROM unnest({ARRAYS}) AS batch ({", ".join(COLUMNS)})
ON CONFLICT (transaction_id) DO NOTHING
"""


@dataclass(frozen=True)
class Batch:
    rows: list[tuple]
    dead: list[tuple[ConsumerRecord, str]]


def to_row(message: ScoreMessage) -> tuple:
    produced_at = (
        datetime.fromtimestamp(message.produced_at / 1000, UTC) if message.produced_at is not None else None
    )
    return (
        message.transaction_id,
        message.score,
        message.fraud_flag,
        message.model_version,
        encoder.encode(message.reasons).decode() if message.reasons else None,
        bytes(message.input.data).decode() if message.input is not None else None,
        produced_at,
        message.shadow_score,
        message.shadow_version,
        message.decision,
        _matched_rules(message),
    )


def _matched_rules(message: ScoreMessage) -> str | None:
    """The matched rules as JSON: ``[]`` when the rules were applied and none matched, NULL for a message
    from before the detector applied rules (no decision)."""
    return None if message.decision is None else encoder.encode(message.rules).decode()


def rows_and_dead_letters(records: list[ConsumerRecord]) -> Batch:
    """The ``fraud_scores`` rows of the records that are score messages; the others, with their reason."""
    rows, dead = [], []
    for record in records:
        try:
            rows.append(to_row(decode_score(record.value)))
        except BadMessage as bad:
            dead.append((record, bad.reason))
    return Batch(rows, dead)


async def write_rows(pool: asyncpg.Pool, rows: list[tuple]) -> None:
    """Insert ``rows`` idempotently in one statement (one round trip): arrays of columns, unnested."""
    if rows:
        await pool.execute(UPSERT, *zip(*rows, strict=True))


class Sink:
    def __init__(self, settings: Settings, max_records: int = 5000) -> None:
        self.settings = settings
        self.max_records = max_records
        self.metrics = ServiceMetrics("sink")
        self.readiness = Readiness()
        self._stop = asyncio.Event()
        self._committed: dict[TopicPartition, int] = {}
        self._pending_commit: asyncio.Task | None = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            self.settings.topic_scoring,
            group_id=self.settings.sink_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.max_records,
            fetch_max_wait_ms=20,
            **kafka.aiokafka_config(self.settings),
        )
        producer = AIOKafkaProducer(
            acks="all", enable_idempotence=True, **kafka.aiokafka_config(self.settings)
        )
        pool = await self._connect_postgres()
        await retry_async(consumer.start, "kafka consumer start", self._stop)
        await retry_async(producer.start, "kafka producer start", self._stop)
        logger.info("sink started", extra=fields(topic=self.settings.topic_scoring))
        try:
            while not self._stop.is_set():
                records = await consumer.getmany(timeout_ms=200, max_records=self.max_records)
                self.readiness.assigned_partitions = [tp.partition for tp in consumer.assignment()]
                if records:
                    await self._handle(records, consumer, producer, pool)
                else:
                    await self._commit_idle_positions(consumer)
                    self.readiness.batch_done()
            await self._commit_settled()
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
        started = time.perf_counter()
        flat = [record for batch in records.values() for record in batch]
        batch = rows_and_dead_letters(flat)
        await retry_async(lambda: write_rows(pool, batch.rows), "postgres write", self._stop, self._failed)
        await retry_async(
            lambda: self._dead_letters(producer, batch.dead), "dead letters", self._stop, self._failed
        )
        offsets = {tp: batch_records[-1].offset + 1 for tp, batch_records in records.items()}
        await self._commit(consumer, offsets)
        assigned = consumer.assignment()  # less what a rebalance took while the batch was written
        for tp, offset in offsets.items():
            end = consumer.highwater(tp) if tp in assigned else None
            if end is not None:
                self.metrics.consumer_lag.labels("sink", str(tp.partition)).set(end - offset)
        self.metrics.record_batch(len(flat), len(batch.rows), len(batch.dead), time.perf_counter() - started)
        self.readiness.batch_done()

    async def _commit_idle_positions(self, consumer: AIOKafkaConsumer) -> None:
        """Commit positions that moved past transaction markers only, so the lag reads 0 when idle."""
        try:
            positions = {tp: await consumer.position(tp) for tp in consumer.assignment()}
        except IllegalStateError:  # a rebalance took a partition meanwhile; the next pass sees the new ones
            return
        moved = {tp: offset for tp, offset in positions.items() if self._committed.get(tp) != offset}
        if moved:
            await self._commit(consumer, moved)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Commit ``offsets`` in the background while the next batch is fetched and written; each
        commit waits for the one before, so committed offsets never go back."""
        await self._commit_settled()
        self._committed.update(offsets)
        self._pending_commit = asyncio.create_task(self._commit_or_give_up(consumer, offsets))

    async def _commit_or_give_up(
        self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]
    ) -> None:
        """Commit ``offsets``, retrying what is worth it; give the commit up when it can never succeed:
        a rebalance took (some of) the partitions, whose new owner re-reads them from the last
        committed offset."""
        try:
            await retry_async(lambda: consumer.commit(offsets), "kafka commit", self._stop, self._failed)
        except KafkaError as error:
            if worth_retrying(error):
                raise
            self.metrics.errors.inc()
            for tp in offsets:  # not committed: the positions are committed again if the partitions stay
                self._committed.pop(tp, None)
            logger.warning(
                "kafka commit given up",
                extra=fields(
                    error=repr(error), offsets={f"{tp.topic}:{tp.partition}": o for tp, o in offsets.items()}
                ),
            )

    def _failed(self, error: BaseException) -> None:
        self.metrics.errors.inc()

    async def _commit_settled(self) -> None:
        if self._pending_commit is not None:
            pending, self._pending_commit = self._pending_commit, None
            await pending

    async def _dead_letters(self, producer: AIOKafkaProducer, dead: list[tuple[ConsumerRecord, str]]) -> None:
        sends = []
        for record, reason in dead:
            headers = dead_letter_headers(reason, record.topic, record.partition, record.offset)
            logger.warning(
                "dead letter", extra=fields(reason=reason, partition=record.partition, offset=record.offset)
            )
            sends.append(
                await producer.send(self.settings.dlq_scoring, record.value, record.key, headers=headers)
            )
        if sends:
            await asyncio.gather(*sends)

    async def _connect_postgres(self) -> asyncpg.Pool:
        async def connect() -> asyncpg.Pool:
            return await asyncpg.create_pool(self.settings.pg_dsn, min_size=1, max_size=2, timeout=10)

        return await retry_async(connect, "postgres connect", self._stop)
