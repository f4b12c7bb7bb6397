"""What the results view reads from PostgreSQL ``fraud_scores``: small parameterised queries.

Each query is a coroutine taking a connection, so one connection serves a whole refresh of the view;
``read`` opens it (``pipeline.postgres``) and turns any failure to reach the database into
``DatabaseUnavailable``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
import pandas as pd

from fraudstream.config import Settings
from fraudstream.pipeline import postgres
from fraudstream.ui.session import reveals_personal_data
from fraudstream.ui.tables import mask_personal

CONNECT_TIMEOUT_S = 3.0
RECENT_FRAUDS = 10
HISTOGRAM_ROWS = 100
THROUGHPUT_BUCKET_S = 10
THROUGHPUT_WINDOW_S = 10 * 60

FRAUD_COLUMNS = [
    "scored_at", "transaction_id", "score", "model_version", "reasons", "transaction", "decision", "rules",
    "label", "author",
]  # fmt: skip
# An alert: flagged by the model, or blocked or sent to review by a rule (index fraud_scores_alerts).
ALERT = "(fraud_flag = 1 OR decision IN ('block', 'review'))"
# The newest alerts first (the newest partitions' index), then each one's current label (as
# current_labels has it: the latest by labelled_at, then by arrival), one index probe each.
RECENT_FRAUDS_QUERY = f"""
SELECT f.scored_at, f.transaction_id::text AS transaction_id, f.score, f.model_version, f.reasons,
       f.transaction, f.decision, f.rules, l.label, l.author
FROM (SELECT * FROM fraud_scores WHERE {ALERT} ORDER BY scored_at DESC LIMIT $1) AS f
LEFT JOIN LATERAL (
    SELECT label, author FROM fraud_labels WHERE transaction_id = f.transaction_id
    ORDER BY labelled_at DESC, id DESC LIMIT 1
) AS l ON true
ORDER BY f.scored_at DESC
"""
T = TypeVar("T")


@dataclass(frozen=True)
class Totals:
    scored: int
    flagged: int
    blocked: int

    @property
    def flag_rate(self) -> float:
        return self.flagged / self.scored if self.scored else 0.0


@dataclass(frozen=True)
class Results:
    totals: Totals
    frauds: pd.DataFrame
    scores: pd.Series
    throughput: pd.DataFrame


async def recent_frauds(connection: asyncpg.Connection, limit: int = RECENT_FRAUDS) -> pd.DataFrame:
    """The ``limit`` most recent alerts (``ALERT``), newest first, with reasons, input, the decision and
    matched rules, and the analyst's current label."""
    rows = await connection.fetch(RECENT_FRAUDS_QUERY, limit)
    return pd.DataFrame([dict(row) for row in rows], columns=FRAUD_COLUMNS)


async def recent_scores(connection: asyncpg.Connection, limit: int = HISTOGRAM_ROWS) -> pd.Series:
    """Scores of the ``limit`` most recently scored transactions."""
    rows = await connection.fetch("SELECT score FROM fraud_scores ORDER BY scored_at DESC LIMIT $1", limit)
    return pd.Series([row["score"] for row in rows], name="score", dtype="float64")


async def totals(connection: asyncpg.Connection) -> Totals:
    """Every row of ``fraud_scores`` counted, from its daily tally (kept by triggers, migration 0007)."""
    row = await connection.fetchrow(
        "SELECT coalesce(sum(scored), 0)::bigint AS scored, coalesce(sum(flagged), 0)::bigint AS flagged,"
        " coalesce(sum(blocked), 0)::bigint AS blocked FROM fraud_scores_daily"
    )
    return Totals(scored=row["scored"], flagged=row["flagged"], blocked=row["blocked"])


async def throughput(
    connection: asyncpg.Connection, bucket_s: int = THROUGHPUT_BUCKET_S, window_s: int = THROUGHPUT_WINDOW_S
) -> pd.DataFrame:
    """Rows scored per ``bucket_s`` seconds over the last ``window_s`` seconds, empty buckets included.

    The window's rows are counted by bucket in one range scan of the newest partition(s), then set beside
    the buckets (a join per bucket would scan the index once per bucket).
    """
    rows = await connection.fetch(
        """
        WITH step AS (
            SELECT $1::float8 AS seconds,
                   to_timestamp(floor((extract(epoch FROM now())::float8 - $2::float8) / $1::float8)
                                * $1::float8) AS first
        ),
        buckets AS (
            SELECT generate_series(first, now(), make_interval(secs => seconds)) AS bucket FROM step
        ),
        counted AS (
            SELECT to_timestamp(floor(extract(epoch FROM scored_at)::float8 / seconds) * seconds) AS bucket,
                   count(*) AS rows
            FROM fraud_scores, step
            WHERE scored_at >= now() - make_interval(secs => $2::float8 + $1::float8) AND scored_at >= first
            GROUP BY 1
        )
        SELECT bucket, coalesce(counted.rows, 0) AS rows
        FROM buckets LEFT JOIN counted USING (bucket)
        ORDER BY bucket
        """,
        bucket_s,
        window_s,
    )
    return pd.DataFrame([dict(row) for row in rows], columns=["bucket", "rows"])


async def _load(connection: asyncpg.Connection) -> Results:
    return Results(
        totals=await totals(connection),
        frauds=await recent_frauds(connection),
        scores=await recent_scores(connection),
        throughput=await throughput(connection),
    )


def load_results(settings: Settings, reveal_personal: bool | None = None) -> Results:
    """Everything the results view shows, read over one connection; the card holders' names and streets
    masked unless ``reveal_personal`` (by default: unless the session's role may see them)."""
    results = read(settings, _load)
    if reveal_personal is None:
        reveal_personal = reveals_personal_data()
    if not reveal_personal:
        results.frauds["transaction"] = [mask_personal(row) for row in results.frauds["transaction"]]
    return results


def read(settings: Settings, queries: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``queries`` over one connection as the read-only role (``jsonb`` decoded).

    Raises DatabaseUnavailable when PostgreSQL is down, refuses the login, or lacks a table.
    """
    return postgres.run(settings.pg_reader_dsn, queries, CONNECT_TIMEOUT_S)
