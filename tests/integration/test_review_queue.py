"""The review queue's data on a database of its own: the first rows in the page's order, and the "waiting"
count, exact below the cap and capped above it."""

from __future__ import annotations

import asyncio

import pytest

from fraudstream.config import Settings
from fraudstream.infra.migrations import migrate
from fraudstream.pipeline import postgres
from fraudstream.ui import review
from tests.helpers import add_flagged, execute, fetch

pytestmark = pytest.mark.integration

UNFLAGGED = """
INSERT INTO fraud_scores (transaction_id, score, fraud_flag, model_version, transaction)
SELECT gen_random_uuid(), 0.2, 0, 'test', '{"cat_id": "a"}' FROM generate_series(1, $1)
"""
LABEL = """
INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at)
VALUES (gen_random_uuid(), $1, 1, 'analyst', 'ann', now())
"""
# The transactions of category b (added last, one at a time), oldest first.
CATEGORY_B = (
    "SELECT transaction_id AS id FROM fraud_scores WHERE transaction->>'cat_id' = 'b' ORDER BY scored_at"
)


@pytest.fixture
def scores(database: Settings) -> Settings:
    asyncio.run(migrate(database.pg_dsn))
    return database


def queue(settings: Settings, filters: review.Filters, hidden: list[str] | None = None) -> review.Queue:
    async def run() -> review.Queue:
        connection = await postgres.connect(settings.pg_dsn)
        try:
            return await review.queue(connection, filters, hidden or [])
        finally:
            await connection.close()

    return asyncio.run(run())


def test_the_waiting_count_is_exact_up_to_the_cap_and_says_more_beyond(scores: Settings):
    by_score = review.Filters(order="score")
    add_flagged(scores, review.WAITING_CAP - 1, "a")
    execute(scores, UNFLAGGED, (50,))

    below = queue(scores, by_score)
    assert (below.waiting, below.more) == (review.WAITING_CAP - 1, False)
    assert len(below.rows) == review.QUEUE_LIMIT
    assert below.rows["score"].is_monotonic_decreasing
    [top] = fetch(scores, "SELECT max(score) AS score FROM fraud_scores WHERE fraud_flag = 1")
    assert below.rows["score"].iloc[0] == top["score"]

    add_flagged(scores, 1, "b")
    at_cap = queue(scores, by_score)
    assert (at_cap.waiting, at_cap.more) == (review.WAITING_CAP, False)

    add_flagged(scores, 1, "b")
    above = queue(scores, by_score)
    assert (above.waiting, above.more) == (review.WAITING_CAP, True)

    # A decided transaction, and one decided on this page but not landed yet, leave the queue.
    decided, pending = (row["id"] for row in fetch(scores, CATEGORY_B))
    execute(scores, LABEL, (decided,))
    labelled = queue(scores, review.Filters())
    assert (labelled.waiting, labelled.more) == (review.WAITING_CAP, False)
    assert labelled.rows["transaction_id"].iloc[0] == str(pending)
    assert str(decided) not in set(labelled.rows["transaction_id"])
    hidden = queue(scores, review.Filters(), [str(pending)])
    assert (hidden.waiting, hidden.more) == (review.WAITING_CAP - 1, False)
    assert str(pending) not in set(hidden.rows["transaction_id"])


def test_a_page_that_is_not_full_is_the_whole_queue_under_the_filters(scores: Settings):
    add_flagged(scores, 3, "few")
    add_flagged(scores, review.QUEUE_LIMIT + 5, "many")

    few = queue(scores, review.Filters(categories=["few"]))
    assert (few.waiting, few.more, len(few.rows)) == (3, False, 3)
    many = queue(scores, review.Filters(categories=["many"]))
    assert (many.waiting, len(many.rows)) == (review.QUEUE_LIMIT + 5, review.QUEUE_LIMIT)
    assert queue(scores, review.Filters(categories=["none"])).waiting == 0
