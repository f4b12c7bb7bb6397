"""Labels for the lifecycle tests, written into ``fraud_labels`` (read back through ``current_labels``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg

from fraudstream.config import Settings


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
