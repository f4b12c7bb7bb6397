"""fraud_scores partitioned by day (migration 0007): the migration of a filled table, retention, partitions
created ahead and on demand, and the sink's idempotent insert across a redelivery."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from confluent_kafka import Producer
from pydantic import SecretStr

from fraudstream.config import Settings
from fraudstream.contracts.messages import ReceivedInput, ScoreMessage, encoder
from fraudstream.infra.migrations import migrate, migration_files
from fraudstream.infra.topics import ensure_topics
from fraudstream.pipeline import kafka
from fraudstream.pipeline.partitions import maintain, partitions
from fraudstream.pipeline.quality import UNSCORED_LABELS
from fraudstream.pipeline.sink import Sink, to_row, write_rows
from tests.helpers import admin, input_rows

pytestmark = pytest.mark.integration

PARTITIONED = "0007_fraud_scores_partitioned"
# Every column of a row, as text: what the migration must carry over unchanged.
ROWS = """
SELECT transaction_id, score, fraud_flag, scored_at, model_version, reasons, transaction, produced_at,
       decision, rules, shadow_score, shadow_version
FROM fraud_scores ORDER BY transaction_id
"""
JOINED = "SELECT transaction_id, label, score FROM current_labels JOIN fraud_scores USING (transaction_id)"
# The daily tally the triggers keep, and the same figures counted.
TALLY = "SELECT day, scored, flagged, blocked FROM fraud_scores_daily WHERE scored > 0 ORDER BY day"
COUNTED = """
SELECT (scored_at AT TIME ZONE 'UTC')::date AS day, count(*) AS scored,
       count(*) FILTER (WHERE fraud_flag = 1) AS flagged,
       count(*) FILTER (WHERE decision = 'block') AS blocked
FROM fraud_scores GROUP BY 1 ORDER BY 1
"""
# A filled table of the old layout: 3,000 rows over 40 days, 1 in 50 flagged with its input, some rules
# and shadow scores, and a label on every 10th row.
FILL = """
INSERT INTO fraud_scores (transaction_id, score, fraud_flag, scored_at, model_version, reasons,
                          transaction, produced_at, decision, rules, shadow_score, shadow_version)
SELECT gen_random_uuid(), g / 3000.0, (g % 50 = 0)::int,
       now() - (g % 40) * interval '1 day' - g * interval '1 second', 'v1',
       CASE WHEN g % 50 = 0 THEN '[{"feature": "amount", "contribution": 1.5}]'::jsonb END,
       CASE WHEN g % 50 = 0 THEN jsonb_build_object('amount', g, 'cat_id', 'travel') END,
       now() - (g % 40) * interval '1 day' - g * interval '1 second' - interval '40 ms',
       CASE WHEN g % 3 = 0 THEN 'allow' END, CASE WHEN g % 3 = 0 THEN '[]'::jsonb END,
       CASE WHEN g % 7 = 0 THEN 0.25 END, CASE WHEN g % 7 = 0 THEN 'v2' END
FROM generate_series(1, 3000) AS g
"""
LABEL = """
INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at)
SELECT gen_random_uuid(), transaction_id, fraud_flag, 'analyst', 'ann', now()
FROM (SELECT transaction_id, fraud_flag, row_number() OVER (ORDER BY transaction_id) AS n FROM fraud_scores) s
WHERE n % 10 = 0
"""


async def _old_layout(connection: asyncpg.Connection) -> None:
    """The migrations before 0007, applied and recorded as ``migrate`` does."""
    await connection.execute(
        "CREATE TABLE schema_migrations"
        " (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    for path in migration_files():
        if path.stem >= PARTITIONED:
            break
        await connection.execute(path.read_text())
        await connection.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.stem)


def test_the_migration_keeps_every_row_and_value_of_a_filled_table_and_its_labels(database: Settings):
    async def scenario() -> dict[str, object]:
        connection = await asyncpg.connect(database.pg_dsn)
        try:
            await _old_layout(connection)
            await connection.execute(FILL)
            await connection.execute(LABEL)
            seen = {"before": await connection.fetch(ROWS), "joined before": await connection.fetch(JOINED)}
            seen["applied"] = await migrate(database.pg_dsn)
            seen["after"], seen["joined after"] = await connection.fetch(ROWS), await connection.fetch(JOINED)
            seen["kind"] = await connection.fetchval(
                "SELECT relkind::text FROM pg_class WHERE relname = 'fraud_scores'"
            )
            await connection.execute(next(p for p in migration_files() if p.stem == PARTITIONED).read_text())
            seen["run again"] = await connection.fetch(ROWS)
            seen["tally"], seen["counted"] = await connection.fetch(TALLY), await connection.fetch(COUNTED)
            seen["days"] = {
                row["day"] for row in await connection.fetch("SELECT day FROM fraud_scores_partitions")
            }
        finally:
            await connection.close()
        return seen

    seen = asyncio.run(scenario())

    assert seen["applied"] == [path.stem for path in migration_files() if path.stem >= PARTITIONED]
    assert seen["kind"] == "p"
    assert len(seen["before"]) == 3000
    assert [dict(row) for row in seen["after"]] == [dict(row) for row in seen["before"]]
    assert len(seen["joined before"]) == 300
    assert sorted(seen["joined after"]) == sorted(seen["joined before"])
    assert seen["run again"] == seen["after"]  # the migration's SQL run a second time changes nothing
    assert seen["tally"] == seen["counted"] and len(seen["tally"]) == 40
    today = datetime.now(UTC).date()
    assert seen["days"] >= {today + timedelta(days=n) for n in range(-39, 8)}


def test_retention_drops_old_days_keeps_their_labels_and_creates_days_ahead(database: Settings):
    today = datetime.now(UTC).date()
    ages = (60, 31, 30, 1)
    ids = {age: uuid.uuid4() for age in ages}
    future = uuid.uuid4()

    async def scenario() -> tuple[list[date], list, int, object]:
        await migrate(database.pg_dsn, retention_days=30)
        pool = await asyncpg.create_pool(database.pg_dsn, min_size=1, max_size=2)
        try:
            # A row for a day with no partition yet lands: the sink creates the partition.
            rows = [_row(ids[age], _noon(today - timedelta(days=age))) for age in ages]
            await write_rows(pool, [*rows, _row(future, _noon(today + timedelta(days=40)))])
            await pool.executemany(
                "INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at)"
                " VALUES (gen_random_uuid(), $1, 1, 'chargeback', 'bank', now())",
                [(transaction_id,) for transaction_id in ids.values()],
            )
            await maintain(pool)
            days = [row["day"] for row in await pool.fetch("SELECT day FROM fraud_scores_partitions")]
            labelled = await pool.fetch(
                "SELECT l.transaction_id, s.score FROM current_labels l"
                " LEFT JOIN fraud_scores s USING (transaction_id) ORDER BY s.score NULLS FIRST"
            )
            assert await pool.fetch(TALLY) == await pool.fetch(COUNTED)  # the dropped days' tally went
            async with pool.acquire() as connection:
                return (
                    days,
                    labelled,
                    await connection.fetchval(UNSCORED_LABELS),
                    await partitions(connection),
                )
        finally:
            await pool.close()

    days, labelled, unscored, summary = asyncio.run(scenario())

    assert today - timedelta(days=60) not in days and today - timedelta(days=31) not in days
    assert {today - timedelta(days=30), today - timedelta(days=1), today + timedelta(days=40)} <= set(days)
    assert {today + timedelta(days=n) for n in range(8)} <= set(days)
    # The labels of dropped scores stay, as labels that wait for their score: counted by the quality page.
    assert {row["transaction_id"] for row in labelled} == set(ids.values())
    assert {row["transaction_id"] for row in labelled if row["score"] is None} == {ids[60], ids[31]}
    assert unscored == 2
    assert (summary.count, summary.oldest, summary.newest) == (
        len(days),
        today - timedelta(days=30),
        today + timedelta(days=40),
    )


def test_the_sinks_role_keeps_partitions_but_cannot_change_the_retention(database: Settings):
    writer = ("partition_writer", SecretStr("writer-password"))
    sink = database.model_copy(update={"pg_user": writer[0], "pg_password": writer[1]})

    async def scenario() -> list[BaseException | None]:
        await migrate(database.pg_dsn, writer=writer)
        pool = await asyncpg.create_pool(sink.pg_dsn, min_size=1, max_size=1)
        outcomes: list[BaseException | None] = []
        try:
            await maintain(pool)
            await write_rows(pool, [_row(uuid.uuid4(), datetime.now(UTC) - timedelta(days=3))])
            for statement in (
                "UPDATE fraud_scores_policy SET retention_days = 1",
                f"DROP TABLE fraud_scores_p{datetime.now(UTC):%Y%m%d}",
                "DELETE FROM fraud_scores",
            ):
                try:
                    await pool.execute(statement)
                    outcomes.append(None)
                except asyncpg.InsufficientPrivilegeError as error:
                    outcomes.append(error)
        finally:
            await pool.close()
            await admin(database, f"DROP OWNED BY {writer[0]}; DROP ROLE {writer[0]}")
        return outcomes

    assert all(isinstance(outcome, asyncpg.InsufficientPrivilegeError) for outcome in asyncio.run(scenario()))


def test_a_redelivered_batch_is_stored_once(stack_settings: Settings):
    """The sink reads the same score records twice, as after a crash between its INSERT and its offset
    commit (a second consumer group re-reads them from the start): one row per transaction, and a
    record from 45 days ago lands in a partition created for it."""
    settings = stack_settings.scoped(f"partitions-{uuid.uuid4().hex[:6]}")
    ensure_topics(settings)
    now = datetime.now(UTC)
    inputs = input_rows(20, seed=11)
    messages = [
        ScoreMessage(
            uuid.uuid4(),
            0.5,
            0,
            model_version="v1",
            input=ReceivedInput(encoder.encode(row)),
            decision="allow",
        )
        for row in inputs
    ]
    stamps = [now - timedelta(days=45 if n == 0 else 0, seconds=n) for n in range(len(messages))]
    stamped = list(zip(messages, stamps, strict=True))
    producer = Producer(kafka.producer_config(settings))
    for message, stamp in stamped:
        producer.produce(
            settings.topic_scoring,
            encoder.encode(message),
            str(message.transaction_id).encode(),
            timestamp=int(stamp.timestamp() * 1000),
        )
    producer.flush(30)

    for group in ("first", "redelivery"):
        _sink_reads_everything(settings.model_copy(update={"sink_group": f"{settings.sink_group}-{group}"}))

    rows = asyncio.run(_stored(settings, [str(message.transaction_id) for message in messages]))
    assert _tally(settings) == _counted(settings)  # the redelivery counted nothing
    to_ms = {str(m.transaction_id): s.replace(microsecond=s.microsecond // 1000 * 1000) for m, s in stamped}
    assert sorted(rows) == sorted(to_ms.items())


def _sink_reads_everything(settings: Settings) -> None:
    """Run a sink in this process until its consumer group has committed the whole topic."""

    async def run() -> None:
        sink = Sink(settings)
        task = asyncio.create_task(sink.run())
        try:
            for _ in range(600):
                await asyncio.sleep(0.1)
                lag = await asyncio.to_thread(
                    kafka.group_lag, settings, settings.sink_group, settings.topic_scoring, 10
                )
                if task.done() or lag.get("lag") == 0:
                    break
        finally:
            sink.stop()
            await task

    asyncio.run(run())
    assert kafka.group_lag(settings, settings.sink_group, settings.topic_scoring, 10)["lag"] == 0


async def _stored(settings: Settings, ids: list[str]) -> list[tuple[str, datetime]]:
    connection = await asyncpg.connect(settings.pg_dsn)
    try:
        rows = await connection.fetch(
            "SELECT transaction_id::text, scored_at FROM fraud_scores WHERE transaction_id = ANY($1::uuid[])",
            ids,
        )
    finally:
        await connection.close()
    return [tuple(row) for row in rows]


def _tally(settings: Settings) -> list:
    return asyncio.run(_fetch(settings, TALLY))


def _counted(settings: Settings) -> list:
    return asyncio.run(_fetch(settings, COUNTED))


async def _fetch(settings: Settings, query: str) -> list:
    connection = await asyncpg.connect(settings.pg_dsn)
    try:
        return await connection.fetch(query)
    finally:
        await connection.close()


def _noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def _row(transaction_id: uuid.UUID, scored_at: datetime) -> tuple:
    return to_row(ScoreMessage(transaction_id, 0.3, 0, model_version="v1"), scored_at)


def test_a_label_knows_its_scores_time_whichever_arrives_first(database: Settings):
    early, late = uuid.uuid4(), uuid.uuid4()
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    link = "SELECT scored_at FROM fraud_labels WHERE transaction_id = $1"
    label = (
        "INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at)"
        " VALUES (gen_random_uuid(), $1, 1, 'analyst', 'ann', now())"
    )

    async def scenario() -> list[datetime | None]:
        await migrate(database.pg_dsn)
        pool = await asyncpg.create_pool(database.pg_dsn, min_size=1, max_size=2)
        try:
            await pool.execute(label, early)  # before its score: not linked yet
            seen = [await pool.fetchval(link, early)]
            await write_rows(pool, [_row(early, at), _row(late, at)])
            await pool.execute(label, late)  # after its score: linked at once
            seen += [await pool.fetchval(link, early), await pool.fetchval(link, late)]
            # As if the label and its score had been committed at the same instant, each unseen by the other.
            await pool.execute("UPDATE fraud_labels SET scored_at = NULL WHERE transaction_id = $1", late)
            await maintain(pool)
            seen.append(await pool.fetchval(link, late))
            await pool.execute("DELETE FROM fraud_scores WHERE transaction_id = $1", early)
            seen.append(await pool.fetchval(link, early))
        finally:
            await pool.close()
        return seen

    assert asyncio.run(scenario()) == [None, at, at, at, None]
