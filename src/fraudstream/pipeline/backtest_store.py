"""What a backtest reads from PostgreSQL: the stored transactions of a period (plus the warm-up before
it) from ``fraud_scores``, and their labels from the ``current_labels`` view.

The period is in transaction time, the input's ``transaction_time`` inside the stored ``transaction``
(text in the input's ``YYYY-MM-DD HH:MM[:SS]`` form, which orders like time under the "C" collation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
import pandas as pd

from fraudstream.pipeline import postgres
from fraudstream.rules.backtest import STORED_COLUMNS, warm_up_start

_TIME = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class StoredPeriod:
    stored: pd.DataFrame  # STORED_COLUMNS, from the warm-up's start to the period's end
    labels: pd.DataFrame  # transaction_id, label: the current label of those that have one
    notes: tuple[str, ...]


async def stored_transactions(
    connection: asyncpg.Connection, start: datetime, until: datetime
) -> pd.DataFrame:
    """Scored transactions with their stored input, transaction time in [start, until)."""
    rows = await connection.fetch(
        """
        SELECT transaction_id::text AS transaction_id, transaction, score, fraud_flag FROM fraud_scores
        WHERE transaction IS NOT NULL
          AND (transaction->>'transaction_time') COLLATE "C" >= $1
          AND (transaction->>'transaction_time') COLLATE "C" < $2
        """,
        start.strftime(_TIME),
        until.strftime(_TIME),
    )
    return pd.DataFrame([dict(row) for row in rows], columns=list(STORED_COLUMNS))


async def without_input(connection: asyncpg.Connection) -> int:
    """Scored transactions whose input was not stored: their time is unknown, they cannot be replayed."""
    return await connection.fetchval("SELECT count(*) FROM fraud_scores WHERE transaction IS NULL")


async def current_labels(connection: asyncpg.Connection, transaction_ids: list[str]) -> pd.DataFrame:
    """(transaction_id, label) of those of these transactions that have a label."""
    rows = await connection.fetch(
        "SELECT transaction_id::text AS transaction_id, label FROM current_labels"
        " WHERE transaction_id = ANY($1::uuid[])",
        transaction_ids,
    )
    return pd.DataFrame([dict(row) for row in rows], columns=["transaction_id", "label"])


async def stored_time_range(connection: asyncpg.Connection) -> tuple[datetime, datetime] | None:
    """The first and last transaction times among the stored inputs (None when none is stored)."""
    row = await connection.fetchrow(
        """
        SELECT min((transaction->>'transaction_time') COLLATE "C") AS first,
               max((transaction->>'transaction_time') COLLATE "C") AS last
        FROM fraud_scores WHERE transaction IS NOT NULL
        """
    )
    if row["first"] is None:
        return None
    return datetime.fromisoformat(row["first"]), datetime.fromisoformat(row["last"])


async def load_period(connection: asyncpg.Connection, since: datetime, until: datetime) -> StoredPeriod:
    """The stored transactions of [since, until) and the warm-up before, their labels, and notes; over
    a ``postgres.connect`` connection (``jsonb`` decoded)."""
    stored = await stored_transactions(connection, warm_up_start(since), until)
    notes = []
    missing = await without_input(connection)
    if missing:
        notes.append(f"{missing:,} scored transactions have no stored input and are not replayed")
    labels = await current_labels(connection, stored["transaction_id"].tolist())
    return StoredPeriod(stored, labels, tuple(notes))


def load_backtest_period(dsn: str, since: datetime, until: datetime) -> StoredPeriod:
    """``load_period`` over a connection of its own; raises ``DatabaseUnavailable`` if PostgreSQL fails."""
    return postgres.run(dsn, lambda connection: load_period(connection, since, until))


def load_time_range(dsn: str) -> tuple[datetime, datetime] | None:
    """``stored_time_range`` over a connection of its own; raises ``DatabaseUnavailable``."""
    return postgres.run(dsn, stored_time_range)
