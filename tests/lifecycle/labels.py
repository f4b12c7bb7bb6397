"""Labels for the lifecycle tests, in ``fraud_labels`` / ``current_labels``.

Those belong to the labels work (migration 0003, another branch). Until it is merged, the tests create
them with the same DDL when they are missing (and only then), so that the comparisons and ``train
--from-db`` run against the real view once it is there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from fraudstream.config import Settings

LABELS_DDL = """
CREATE TABLE IF NOT EXISTS fraud_labels (
    id BIGSERIAL PRIMARY KEY,
    label_id UUID NOT NULL UNIQUE,
    transaction_id UUID NOT NULL,
    label SMALLINT NOT NULL CHECK (label IN (0, 1)),
    source TEXT NOT NULL CHECK (source <> ''),
    author TEXT NOT NULL CHECK (author <> ''),
    labelled_at TIMESTAMPTZ NOT NULL,
    note TEXT,
    received_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE OR REPLACE VIEW current_labels AS
    SELECT DISTINCT ON (transaction_id) transaction_id, label_id, label, source, author, labelled_at, note
    FROM fraud_labels ORDER BY transaction_id, labelled_at DESC, id DESC;
"""


def ensure_labels_schema(settings: Settings) -> None:
    async def apply() -> None:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            if await connection.fetchval("SELECT to_regclass('current_labels')") is None:
                await connection.execute(LABELS_DDL)
        finally:
            await connection.close()

    asyncio.run(apply())


def insert_labels(
    settings: Settings, transaction_ids: Sequence[str], labels: Sequence[int], source: str = "analyst"
) -> None:
    """One decision per transaction, as an analyst (or a chargeback feed) would record it."""

    async def insert() -> None:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            await connection.executemany(
                "INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at)"
                " VALUES ($1, $2, $3, $4, 'test', $5)",
                [
                    (uuid.uuid4(), uuid.UUID(tid), int(label), source, datetime.now(UTC))
                    for tid, label in zip(transaction_ids, labels, strict=True)
                ],
            )
        finally:
            await connection.close()

    asyncio.run(insert())
