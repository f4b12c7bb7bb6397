"""The sink: consumes ``scoring`` and writes ``fraud_scores``, batch by batch (``pipeline.table_writer``).

Each batch is one ``INSERT ... SELECT FROM unnest(<column arrays>) ON CONFLICT DO NOTHING``: one
round trip to PostgreSQL, and a replayed message never duplicates or fails. A row's ``scored_at`` is the
score record's Kafka timestamp, not the sink's clock: it is the same on every redelivery of the record,
so that the key ``(transaction_id, scored_at)`` of the table partitioned by day on ``scored_at``
catches a redelivery (migration 0007).

That key cannot catch a transaction id *sent* twice (a producer retrying without idempotence, a file
uploaded twice): each copy is scored, at another time. The first score of a transaction id is kept and
a later one within ``DUPLICATE_WINDOW`` of it is dropped, as the unpartitioned table's key on the id alone
did; the window bounds the check to the partitions of the days around the row (runtime pruning), so
its cost does not grow with the retention.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import ConsumerRecord

from fraudstream.config import Settings
from fraudstream.contracts.messages import BadMessage, ScoreMessage, decode_score, encoder
from fraudstream.pipeline.partitions import add_partitions, maintain
from fraudstream.pipeline.table_writer import Decoded, Table, TableWriter, decode_records

# The columns a row of ``to_row`` fills, with their PostgreSQL types.
COLUMN_TYPES = {
    "transaction_id": "uuid",
    "scored_at": "timestamptz",
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
DUPLICATE_WINDOW = "1 day"
UPSERT = f"""
INSERT INTO fraud_scores ({", ".join(COLUMNS)})
SELECT * FROM (
    SELECT DISTINCT ON (transaction_id) * FROM unnest({ARRAYS}) AS batch ({", ".join(COLUMNS)})
    ORDER BY transaction_id, scored_at
) AS batch
WHERE NOT EXISTS (
    SELECT FROM fraud_scores AS stored
    WHERE stored.transaction_id = batch.transaction_id
      AND stored.scored_at BETWEEN batch.scored_at - interval '{DUPLICATE_WINDOW}'
                               AND batch.scored_at + interval '{DUPLICATE_WINDOW}'
)
ON CONFLICT (transaction_id, scored_at) DO NOTHING
"""
SCORED_AT = COLUMNS.index("scored_at")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def record_time(record: ConsumerRecord) -> datetime:
    """The Kafka timestamp of ``record`` (stamped by its producer, or by the broker with LogAppendTime).

    Raises BadMessage when the record has none (-1) or one no date can hold.
    """
    if record.timestamp is None or record.timestamp < 0:
        raise BadMessage("the score record has no Kafka timestamp: its scored_at is unknown")
    try:
        return EPOCH + timedelta(milliseconds=record.timestamp)
    except OverflowError:
        raise BadMessage(f"the score record's Kafka timestamp {record.timestamp} is out of range") from None


def to_row(message: ScoreMessage, scored_at: datetime) -> tuple:
    produced_at = (
        datetime.fromtimestamp(message.produced_at / 1000, UTC) if message.produced_at is not None else None
    )
    return (
        message.transaction_id,
        scored_at,
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


def rows_and_dead_letters(records: list[ConsumerRecord]) -> Decoded:
    """The ``fraud_scores`` rows of the records that are score messages; the others, with their reason."""
    return decode_records(records, lambda record: to_row(decode_score(record.value), record_time(record)))


async def write_rows(pool: asyncpg.Pool, rows: list[tuple]) -> None:
    """Insert ``rows`` idempotently in one statement (one round trip): arrays of columns, unnested.

    A row of a day without a partition fails the whole statement: the missing partitions are created
    and the batch written again.
    """
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    try:
        await pool.execute(UPSERT, *columns)
    except asyncpg.CheckViolationError:  # "no partition of relation fraud_scores found for row"
        await add_partitions(pool, list(columns[SCORED_AT]))
        await pool.execute(UPSERT, *columns)


class Sink(TableWriter):
    """``scoring`` -> ``fraud_scores``."""

    def __init__(self, settings: Settings, max_records: int = 5000) -> None:
        table = Table(
            service="sink",
            topic=settings.topic_scoring,
            group=settings.sink_group,
            dead_letter_topic=settings.dlq_scoring,
            decode=rows_and_dead_letters,
            write=write_rows,
            max_records=max_records,
            pool_size=2,
            maintain=maintain,
        )
        super().__init__(settings, table)
