"""The daily partitions of ``fraud_scores`` (migration 0007): created ahead and on demand, dropped after
the retention period.

The SQL functions do the work, as the migrations' role (the sink's role may only insert); the sink calls
``maintain`` at start and every hour, and ``add_partitions`` when a batch holds a day that has no
partition yet (PostgreSQL refuses such a row: there is no DEFAULT partition to catch it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from fraudstream.logs import fields

logger = logging.getLogger(__name__)

AHEAD_DAYS = 7  # today's partition and the next days', so that a day's first row never waits for DDL


@dataclass(frozen=True)
class Partitions:
    """What ``fraud_scores`` holds: its daily partitions."""

    count: int
    oldest: date | None
    newest: date | None


async def maintain(pool: asyncpg.Pool) -> None:
    """Create the partitions of today and the next ``AHEAD_DAYS`` days; drop those past retention."""
    row = await pool.fetchrow("SELECT created, dropped FROM fraud_scores_maintain($1)", AHEAD_DAYS)
    logger.info("partitions maintained", extra=fields(table="fraud_scores", **dict(row)))


async def add_partitions(pool: asyncpg.Pool, scored_at: list[datetime]) -> int:
    """Create the partitions of the days of ``scored_at`` (UTC) that have none; how many were created."""
    created = await pool.fetchval("SELECT fraud_scores_add_partitions($1::timestamptz[])", scored_at)
    if created:
        logger.info("partitions created on demand", extra=fields(table="fraud_scores", created=created))
    return created


async def partitions(connection: asyncpg.Connection) -> Partitions:
    row = await connection.fetchrow(
        "SELECT count(*) AS count, min(day) AS oldest, max(day) AS newest FROM fraud_scores_partitions"
    )
    return Partitions(**dict(row))
