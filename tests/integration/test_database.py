"""The schema: versioned migrations, the UI's role that can only read, and the sink's idempotent insert."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import pytest

from fraudstream.contracts.messages import MatchedRule, Reason, ReceivedInput, ScoreMessage
from fraudstream.infra.migrations import migrate, migration_files
from fraudstream.pipeline.sink import to_row, write_rows

pytestmark = pytest.mark.integration


async def _fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetch(query)
    finally:
        await connection.close()


def test_every_migration_is_recorded_once_and_rerunning_applies_nothing(stack_settings):
    recorded = asyncio.run(_fetch(stack_settings.pg_dsn, "SELECT version FROM schema_migrations ORDER BY 1"))

    assert [row["version"] for row in recorded] == [path.stem for path in migration_files()]
    assert asyncio.run(migrate(stack_settings.pg_dsn, reader=stack_settings.pg_reader)) == []


def test_the_reader_role_reads_but_cannot_write(stack_settings):
    reader = stack_settings.pg_reader_dsn

    asyncio.run(_fetch(reader, "SELECT count(*) FROM fraud_scores"))
    for statement in (
        "INSERT INTO fraud_scores (transaction_id, score, fraud_flag) VALUES (gen_random_uuid(), 0.1, 0)",
        "DELETE FROM fraud_scores",
        "DROP TABLE fraud_scores",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            asyncio.run(_fetch(reader, statement))


def test_a_batch_is_stored_once_per_transaction_whatever_repeats(stack_settings):
    """The sink's insert: repeats inside a batch and across batches give one row, with its details."""
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    reasons = [{"feature": "amount", "contribution": 1.5}]
    produced = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    flagged = ScoreMessage(
        uuid.UUID(first),
        0.9,
        1,
        [Reason(**reasons[0])],
        "v1",
        1767323045678,
        ReceivedInput(msgspec.Raw(b'{"amount": 9.5}')),
        decision="block",
        rules=[MatchedRule("big", 2)],
    )
    plain = ScoreMessage(uuid.UUID(second), 0.1, 0, model_version="v1")  # from before rules
    at = datetime.now(UTC)  # the score records' Kafka timestamp

    async def write_twice() -> list[asyncpg.Record]:
        pool = await asyncpg.create_pool(stack_settings.pg_dsn, min_size=1, max_size=1)
        try:
            await write_rows(pool, [to_row(flagged, at), to_row(flagged, at), to_row(plain, at)])
            await write_rows(pool, [to_row(plain, at)])
            await write_rows(pool, [])
            return await pool.fetch(
                "SELECT * FROM fraud_scores WHERE transaction_id = ANY($1::uuid[]) ORDER BY score DESC",
                [first, second],
            )
        finally:
            await pool.close()

    rows = asyncio.run(write_twice())

    assert [str(row["transaction_id"]) for row in rows] == [first, second]
    assert json.loads(rows[0]["reasons"]) == reasons and rows[1]["reasons"] is None
    assert json.loads(rows[0]["transaction"]) == {"amount": 9.5} and rows[1]["transaction"] is None
    assert rows[0]["produced_at"] == produced and rows[1]["produced_at"] is None
    assert (rows[0]["score"], rows[0]["fraud_flag"], rows[0]["model_version"]) == (0.9, 1, "v1")
    assert all(row["scored_at"] == at for row in rows)
    assert rows[0]["decision"] == "block" and json.loads(rows[0]["rules"]) == [{"id": "big", "version": 2}]
    assert rows[1]["decision"] is None and rows[1]["rules"] is None


def test_a_transaction_id_sent_twice_keeps_its_first_score(stack_settings):
    """Two input messages with one transaction id are scored at two times: the first score is kept, in
    one batch or in two, and a score of the same id two days later is a row of its own."""
    transaction_id = uuid.uuid4()
    at = datetime.now(UTC).replace(microsecond=0)

    def score(value: float) -> ScoreMessage:
        return ScoreMessage(transaction_id, value, 0, model_version="v1")

    async def write() -> list[tuple[float, datetime]]:
        pool = await asyncpg.create_pool(stack_settings.pg_dsn, min_size=1, max_size=1)
        try:
            later, earlier = to_row(score(0.2), at + timedelta(seconds=1)), to_row(score(0.1), at)
            await write_rows(pool, [later, earlier])  # one batch: the earlier score wins
            await write_rows(pool, [to_row(score(0.3), at + timedelta(hours=20))])  # a later batch
            await write_rows(pool, [to_row(score(0.4), at - timedelta(days=2))])  # outside the window
            rows = await pool.fetch(
                "SELECT score, scored_at FROM fraud_scores WHERE transaction_id = $1 ORDER BY scored_at",
                transaction_id,
            )
            return [(row["score"], row["scored_at"]) for row in rows]
        finally:
            await pool.close()

    assert asyncio.run(write()) == [(0.4, at - timedelta(days=2)), (0.1, at)]
