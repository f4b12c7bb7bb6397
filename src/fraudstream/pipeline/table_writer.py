"""A topic written into a PostgreSQL table, exactly once in effect: decode, idempotent insert, dead
letters, then commit.

Each batch of records is decoded into rows and dead letters; the rows are written in one idempotent
statement (a replayed record never duplicates or fails), the dead letters are acknowledged by the
dead-letter topic, and only then are the offsets committed: nothing acknowledged is ever lost.

The commit runs in the background while the next batch is fetched and written; each commit waits for
the one before, so committed offsets never go back. Failures of PostgreSQL and Kafka are retried
(``pipeline.retry``), except a commit that a rebalance made impossible: that commit is given up, and
the partitions' new owner re-reads them from the last committed offset (the rows are idempotent).
Used by the sink (``scoring`` -> ``fraud_scores``) and the labels consumer (``labels`` -> ``fraud_labels``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from fraudstream.config import Settings
from fraudstream.contracts.messages import BadMessage, dead_letter_headers
from fraudstream.logs import fields
from fraudstream.pipeline import kafka
from fraudstream.pipeline.retry import retry_async, worth_retrying
from fraudstream.telemetry import Readiness, ServiceMetrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decoded:
    rows: list[tuple]
    dead: list[tuple[ConsumerRecord, str]]


def decode_records(records: list[ConsumerRecord], to_row: Callable[[ConsumerRecord], tuple]) -> Decoded:
    """The rows of the records ``to_row`` accepts; the others, with the reason it gave (``BadMessage``)."""
    rows, dead = [], []
    for record in records:
        try:
            rows.append(to_row(record))
        except BadMessage as bad:
            dead.append((record, bad.reason))
    return Decoded(rows, dead)


@dataclass(frozen=True)
class Table:
    """One topic and the table it is written into."""

    service: str  # the metrics' ``service`` label and the logs' name
    topic: str
    group: str
    dead_letter_topic: str
    decode: Callable[[list[ConsumerRecord]], Decoded]
    write: Callable[[asyncpg.Pool, list[tuple]], Awaitable[None]]  # idempotent
    max_records: int
    pool_size: int = 1
    # Upkeep of the table (the sink's partitions), run at start and every ``maintain_every_s``; a failure
    # is logged and tried again at the next run, the writes go on.
    maintain: Callable[[asyncpg.Pool], Awaitable[None]] | None = None
    maintain_every_s: float = 3600.0


class TableWriter:
    """Consumes ``table.topic`` and writes it into its table, batch by batch (see the module docstring)."""

    def __init__(self, settings: Settings, table: Table) -> None:
        self.settings = settings
        self.table = table
        self.metrics = ServiceMetrics(table.service)
        self.readiness = Readiness()
        self._stop = asyncio.Event()
        self._committed: dict[TopicPartition, int] = {}
        self._pending_commit: asyncio.Task | None = None
        self._maintained_at: float | None = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            self.table.topic,
            group_id=self.table.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.table.max_records,
            fetch_max_wait_ms=self.settings.fetch_wait_max_ms,
            **kafka.aiokafka_config(self.settings),
        )
        producer = AIOKafkaProducer(
            acks="all", enable_idempotence=True, **kafka.aiokafka_config(self.settings)
        )
        pool = await self._connect_postgres()
        await retry_async(consumer.start, "kafka consumer start", self._stop)
        await retry_async(producer.start, "kafka producer start", self._stop)
        logger.info("started", extra=fields(service=self.table.service, topic=self.table.topic))
        try:
            while not self._stop.is_set():
                await self.maintain_if_due(pool)
                records = await consumer.getmany(timeout_ms=200, max_records=self.table.max_records)
                self.readiness.assigned_partitions = [tp.partition for tp in consumer.assignment()]
                if records:
                    await self.handle(records, consumer, producer, pool)
                else:
                    await self.commit_idle_positions(consumer)
                    self.readiness.batch_done()
            await self.commit_settled()
        finally:
            await consumer.stop()
            await producer.stop()
            await pool.close()

    async def handle(
        self,
        records: dict[TopicPartition, list[ConsumerRecord]],
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        pool: asyncpg.Pool,
    ) -> None:
        """Write one batch: rows, then dead letters, then its offsets committed (in the background)."""
        started = time.perf_counter()
        flat = [record for batch in records.values() for record in batch]
        batch = self.table.decode(flat)
        await retry_async(
            lambda: self.table.write(pool, batch.rows), "postgres write", self._stop, self._failed
        )
        await retry_async(
            lambda: self._dead_letters(producer, batch.dead), "dead letters", self._stop, self._failed
        )
        offsets = {tp: batch_records[-1].offset + 1 for tp, batch_records in records.items()}
        await self.commit(consumer, offsets)
        assigned = consumer.assignment()  # less what a rebalance took while the batch was written
        for tp, offset in offsets.items():
            end = consumer.highwater(tp) if tp in assigned else None
            if end is not None:
                self.metrics.consumer_lag.labels(self.table.service, str(tp.partition)).set(end - offset)
        self.metrics.record_batch(len(flat), len(batch.rows), len(batch.dead), time.perf_counter() - started)
        self.readiness.batch_done()

    async def maintain_if_due(self, pool: asyncpg.Pool) -> None:
        """Run the table's upkeep at the first pass and every ``maintain_every_s`` seconds after."""
        now = time.monotonic()
        if self.table.maintain is None or (
            self._maintained_at is not None and now - self._maintained_at < self.table.maintain_every_s
        ):
            return
        self._maintained_at = now
        try:
            await self.table.maintain(pool)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            self.metrics.errors.inc()
            logger.warning("table upkeep failed", extra=fields(service=self.table.service, error=repr(error)))

    async def commit_idle_positions(self, consumer: AIOKafkaConsumer) -> None:
        """Commit positions that moved past transaction markers only, so the lag reads 0 when idle."""
        try:
            positions = {tp: await consumer.position(tp) for tp in consumer.assignment()}
        except IllegalStateError:  # a rebalance took a partition meanwhile; the next pass sees the new ones
            return
        moved = {tp: offset for tp, offset in positions.items() if self._committed.get(tp) != offset}
        if moved:
            await self.commit(consumer, moved)

    async def commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        """Commit ``offsets`` in the background while the next batch is fetched and written; each
        commit waits for the one before, so committed offsets never go back."""
        await self.commit_settled()
        self._committed.update(offsets)
        self._pending_commit = asyncio.create_task(self._commit_or_give_up(consumer, offsets))

    async def commit_settled(self) -> None:
        """Wait for the commit in flight, if any."""
        if self._pending_commit is not None:
            pending, self._pending_commit = self._pending_commit, None
            await pending

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
                    service=self.table.service,
                    error=repr(error),
                    offsets={f"{tp.topic}:{tp.partition}": o for tp, o in offsets.items()},
                ),
            )

    def _failed(self, error: BaseException) -> None:
        self.metrics.errors.inc()

    async def _dead_letters(self, producer: AIOKafkaProducer, dead: list[tuple[ConsumerRecord, str]]) -> None:
        sends = []
        for record, reason in dead:
            headers = dead_letter_headers(reason, record.topic, record.partition, record.offset)
            logger.warning(
                "dead letter",
                extra=fields(
                    reason=reason, topic=record.topic, partition=record.partition, offset=record.offset
                ),
            )
            sends.append(
                await producer.send(self.table.dead_letter_topic, record.value, record.key, headers=headers)
            )
        if sends:
            await asyncio.gather(*sends)

    async def _connect_postgres(self) -> asyncpg.Pool:
        async def connect() -> asyncpg.Pool:
            return await asyncpg.create_pool(
                self.settings.pg_dsn, min_size=1, max_size=self.table.pool_size, timeout=10
            )

        return await retry_async(connect, "postgres connect", self._stop)
