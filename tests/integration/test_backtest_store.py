"""The backtest's loader on the session's real PostgreSQL: the period and its warm-up, rows without
input, and the current labels."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from fraudstream.config import Settings
from fraudstream.infra.process import free_port
from fraudstream.pipeline.backtest_store import load_backtest_period
from fraudstream.pipeline.postgres import DatabaseUnavailable
from tests.unit.transactions import transactions

pytestmark = pytest.mark.integration

SINCE, UNTIL = datetime(1990, 1, 10), datetime(1990, 1, 12)
TIMES = [
    "1990-01-02 23:59",
    "1990-01-03 00:00",
    "1990-01-10 00:00",
    "1990-01-11 23:59:30",
    "1990-01-12 00:00",
]


async def _execute(dsn: str, statement: str, *rows: tuple) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        if rows:
            await connection.executemany(statement, rows)
        else:
            await connection.execute(statement)
    finally:
        await connection.close()


def insert(settings: Settings) -> list[str]:
    """One stored transaction at each of TIMES (ids in that order), plus one without its input."""
    inputs = transactions([(7, time[:16], "home", 10.0) for time in TIMES])
    records = inputs.to_dict("records")
    for record, time in zip(records, TIMES, strict=True):
        record["transaction_time"] = time
    ids = [str(uuid.uuid4()) for _ in TIMES]
    rows = [(i, 0.1, 0, json.dumps(record)) for i, record in zip(ids, records, strict=True)]
    rows.append((str(uuid.uuid4()), 0.9, 1, None))
    asyncio.run(
        _execute(
            settings.pg_dsn,
            "INSERT INTO fraud_scores (transaction_id, score, fraud_flag, transaction)"
            " VALUES ($1, $2, $3, $4::jsonb)",
            *rows,
        )
    )
    return ids


def test_the_period_from_its_warm_up_to_its_end_and_rows_without_input_noted(stack_settings):
    ids = insert(stack_settings)

    period = load_backtest_period(stack_settings.pg_reader_dsn, SINCE, UNTIL)

    assert sorted(period.stored["transaction_id"]) == sorted(ids[1:4])  # [since - 7 days, until)
    assert period.stored.set_index("transaction_id").loc[ids[3], "transaction"]["amount"] == 10.0
    assert period.labels.empty
    assert any(
        note.endswith("scored transactions have no stored input and are not replayed")
        for note in period.notes
    )


def test_labels_are_the_current_ones_of_the_period(stack_settings):
    ids = insert(stack_settings)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    decisions = [(ids[2], 1, at), (ids[3], 1, at), (ids[3], 0, at + timedelta(days=1))]
    asyncio.run(
        _execute(
            stack_settings.pg_dsn,
            "INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at)"
            " VALUES ($1, $2, $3, 'analyst', 'test', $4)",
            *((uuid.uuid4(), uuid.UUID(i), label, when) for i, label, when in decisions),
        )
    )

    period = load_backtest_period(stack_settings.pg_reader_dsn, SINCE, UNTIL)

    assert sorted(period.labels.itertuples(index=False, name=None)) == sorted([(ids[2], 1), (ids[3], 0)])


def test_an_unreachable_database_is_one_clear_error():
    nothing_settings = Settings(pg_port=free_port())

    with pytest.raises(
        DatabaseUnavailable, match=f"PostgreSQL at localhost:{nothing_settings.pg_port}/fraud is unavailable"
    ):
        load_backtest_period(nothing_settings.pg_dsn, SINCE, UNTIL)
