"""The review queue's data: flagged transactions without a decision, one transaction's story, and
recording decisions (published to the ``labels`` topic: the UI's database role is read-only)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
import pandas as pd
from confluent_kafka import KafkaException

from fraudstream.config import Settings
from fraudstream.contracts.messages import BadMessage, LabelMessage, new_label
from fraudstream.pipeline.labels import publish_labels
from fraudstream.ui.kafka_view import KafkaUnavailable, require_topic
from fraudstream.ui.queries import read

QUEUE_LIMIT = 200
# The "waiting" figure is counted up to here, and shown as "more than" beyond: an exact count would
# read every alert without a decision under the filters (tens of thousands over months of scores).
WAITING_CAP = 10_000
SCORE_COLUMNS = ["scored_at", "transaction_id", "score", "model_version", "reasons", "transaction"]
HISTORY_COLUMNS = ["labelled_at", "label", "source", "author", "note", "received_at"]
# Each order is the order of a partial index on the alerts (fraud_scores_flagged, fraud_scores_flagged_score):
# the first rows come from each partition's index, merged, and the scan stops at the limit.
ORDER = {"newest": "s.scored_at DESC", "score": "s.score DESC, s.scored_at DESC"}
# The flagged transactions without a decision under the filters.
MATCHING = """
FROM fraud_scores s
WHERE s.fraud_flag = 1
  AND NOT EXISTS (SELECT 1 FROM fraud_labels l WHERE l.transaction_id = s.transaction_id)
  AND NOT s.transaction_id = ANY($1::uuid[])
  AND s.scored_at >= $2 AND s.score BETWEEN $3 AND $4
  AND (cardinality($5::text[]) = 0 OR s.transaction->>'cat_id' = ANY($5::text[]))
  AND ($6::float8 IS NULL OR (s.transaction->>'amount')::float8 >= $6)
  AND ($7::float8 IS NULL OR (s.transaction->>'amount')::float8 <= $7)
"""
QUEUES = {
    order: "SELECT s.scored_at, s.transaction_id::text AS transaction_id, s.score, s.model_version,"
    f" s.reasons, s.transaction {MATCHING} ORDER BY {columns} LIMIT $8"
    for order, columns in ORDER.items()
}
WAITING = f"SELECT count(*) FROM (SELECT 1 {MATCHING} LIMIT $8) AS waiting"


class DecisionFailed(RuntimeError):
    """A decision could not be recorded; the message says why."""


@dataclass(frozen=True)
class Filters:
    since: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    min_score: float = 0.0
    max_score: float = 1.0
    categories: list[str] = field(default_factory=list)
    min_amount: float | None = None
    max_amount: float | None = None
    order: str = "newest"


@dataclass(frozen=True)
class Queue:
    rows: pd.DataFrame  # SCORE_COLUMNS, at most QUEUE_LIMIT
    waiting: int  # the flagged transactions without a decision that match the filters, up to WAITING_CAP
    more: bool = False  # more than WAITING_CAP are waiting


@dataclass(frozen=True)
class Story:
    """What is known of one transaction: its score (None before it arrives) and its decisions."""

    transaction_id: str
    score: dict | None
    history: pd.DataFrame  # newest first: the first row is the current decision


async def queue(connection: asyncpg.Connection, filters: Filters, hidden: list[str]) -> Queue:
    """The queue under ``filters``, without the transactions in ``hidden`` (decided, not yet landed).

    A page that is not full holds the whole queue; a full one is counted apart, up to WAITING_CAP, in
    the same snapshot (so the count is never below the rows shown)."""
    parameters = (
        hidden,
        filters.since,
        filters.min_score,
        filters.max_score,
        filters.categories,
        filters.min_amount,
        filters.max_amount,
    )
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        rows = await connection.fetch(QUEUES[filters.order], *parameters, QUEUE_LIMIT)
        counted = (
            len(rows)
            if len(rows) < QUEUE_LIMIT
            else await connection.fetchval(WAITING, *parameters, WAITING_CAP + 1)
        )
    frame = pd.DataFrame([dict(row) for row in rows], columns=SCORE_COLUMNS)
    return Queue(frame, min(counted, WAITING_CAP), counted > WAITING_CAP)


def load_queue(settings: Settings, filters: Filters, hidden: list[str]) -> Queue:
    return read(settings, lambda connection: queue(connection, filters, hidden))


async def categories(connection: asyncpg.Connection, since: datetime) -> list[str]:
    """The categories of the transactions flagged since ``since``, for the queue's filter."""
    rows = await connection.fetch(
        "SELECT DISTINCT transaction->>'cat_id' AS category FROM fraud_scores"
        " WHERE fraud_flag = 1 AND scored_at >= $1 AND transaction ? 'cat_id' ORDER BY 1",
        since,
    )
    return [row["category"] for row in rows]


def load_categories(settings: Settings, since: datetime) -> list[str]:
    return read(settings, lambda connection: categories(connection, since))


def parse_transaction_id(text: str) -> uuid.UUID:
    """Raises ValueError with a message for the analyst when ``text`` is not a transaction id."""
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise ValueError(
            f"{text.strip()!r} is not a transaction id:"
            " transaction ids are UUIDs such as 1b4e28ba-2fa1-11d2-883f-0016d3cca427"
        ) from None


async def story(connection: asyncpg.Connection, transaction_id: uuid.UUID) -> Story:
    score = await connection.fetchrow(
        "SELECT scored_at, score, fraud_flag, model_version, reasons, transaction"
        " FROM fraud_scores WHERE transaction_id = $1",
        transaction_id,
    )
    history = await connection.fetch(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM fraud_labels WHERE transaction_id = $1"
        " ORDER BY labelled_at DESC, id DESC",
        transaction_id,
    )
    frame = pd.DataFrame([dict(row) for row in history], columns=HISTORY_COLUMNS)
    return Story(str(transaction_id), None if score is None else dict(score), frame)


def load_story(settings: Settings, transaction_id: uuid.UUID) -> Story:
    return read(settings, lambda connection: story(connection, transaction_id))


def landed(settings: Settings, label_ids: list[str]) -> dict[str, datetime]:
    """Which of ``label_ids`` are in ``fraud_labels`` already, with the time each was written."""

    async def query(connection: asyncpg.Connection) -> dict[str, datetime]:
        rows = await connection.fetch(
            "SELECT label_id::text AS label_id, received_at FROM fraud_labels"
            " WHERE label_id = ANY($1::uuid[])",
            label_ids,
        )
        return {row["label_id"]: row["received_at"] for row in rows}

    return read(settings, query)


def decide(
    settings: Settings, transaction_ids: list[str], label: int, author: str, note: str
) -> list[LabelMessage]:
    """Publish the analyst's decision on each transaction; raises DecisionFailed saying why not."""
    at = datetime.now(UTC)
    try:
        labels = [
            new_label(uuid.UUID(tid), label, "analyst", author, at, note.strip()) for tid in transaction_ids
        ]
        require_topic(settings, settings.topic_labels)
        publish_labels(settings, labels)
    except BadMessage as error:
        raise DecisionFailed(f"the decision is not valid: {error.reason}") from error
    except KafkaUnavailable as error:
        raise DecisionFailed(str(error)) from error
    except KafkaException as error:
        raise DecisionFailed(f"Kafka did not acknowledge the decision: {error}") from error
    return labels
