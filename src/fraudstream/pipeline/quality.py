"""The model's live quality from ``fraud_scores`` and the current labels, per day (UTC, by ``scored_at``).

Only transactions with a current label say anything about quality, so every figure but the counts is
an estimate from the labels there are:

- precision: among the reviewed alerts (flagged and labelled), the share labelled fraud;
- recall: among the labelled frauds, the share the model flagged (frauds found only by a chargeback
  count against it; frauds nobody labelled are unknown, so the estimate is an upper bound);
- card precision at k (the Fraud Detection Handbook's): each card (customer) of a day ranked by its
  highest score, the share of the k top cards with a transaction labelled fraud that day, k = the
  alert budget; an unlabelled card counts as not fraud (a lower bound), and a day with fewer than k
  cards is still divided by k, as in the Handbook.

Used by the quality page and by the sink process's Prometheus gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg
import numpy as np
import pandas as pd
from prometheus_client import Gauge

from fraudstream.config import Settings
from fraudstream.logs import fields

logger = logging.getLogger(__name__)

# A card is a customer, as the producer keys them; a score without its input is a card of its own.
CARD = """CASE WHEN s.transaction IS NULL THEN s.transaction_id::text
     ELSE concat_ws(chr(31), s.transaction->>'name_1', s.transaction->>'name_2',
                    s.transaction->>'street', s.transaction->>'post_code') END"""
# The current label of each transaction scored in [$1, $2): a label knows its score's scored_at, and
# joins its score by the primary key. No query here reads every score of the window.
LABELLED = """
labelled AS (
    SELECT DISTINCT ON (transaction_id) transaction_id, scored_at, label
    FROM fraud_labels WHERE scored_at >= $1 AND scored_at < $2
    ORDER BY transaction_id, labelled_at DESC, id DESC
)"""
# A labelled transaction's score: one primary key probe in one partition (a lateral subquery that
# LIMIT keeps from being flattened, or the planner hash-joins every score of the window instead).
SCORE_OF_LABEL = """
    SELECT s.* FROM fraud_scores s
    WHERE s.transaction_id = l.transaction_id AND s.scored_at = l.scored_at
      AND s.scored_at >= $1 AND s.scored_at < $2   -- the window's partitions only, pruned when planned
    LIMIT 1
"""
# Each day's counts: the transactions and alerts from the daily tally, the rest from the labelled scores.
DAILY = f"""
WITH {LABELLED},
labels AS (
    SELECT (l.scored_at AT TIME ZONE 'UTC')::date AS day,
           count(*) FILTER (WHERE s.fraud_flag = 1) AS reviewed,
           count(*) FILTER (WHERE s.fraud_flag = 1 AND l.label = 1) AS confirmed,
           count(*) AS labelled,
           count(*) FILTER (WHERE l.label = 1) AS labelled_frauds
    FROM labelled l CROSS JOIN LATERAL ({SCORE_OF_LABEL}) s
    GROUP BY 1
)
SELECT d.day, d.scored AS transactions, d.flagged AS alerts,
       coalesce(labels.reviewed, 0) AS reviewed, coalesce(labels.confirmed, 0) AS confirmed,
       coalesce(labels.labelled, 0) AS labelled, coalesce(labels.labelled_frauds, 0) AS labelled_frauds
FROM fraud_scores_daily d LEFT JOIN labels USING (day)
WHERE d.day >= ($1 AT TIME ZONE 'UTC')::date AND d.day < ($2 AT TIME ZONE 'UTC')::date AND d.scored > 0
ORDER BY d.day
"""
# The cards with a transaction labelled fraud, by day.
FRAUD_CARDS = f"""
WITH {LABELLED}
SELECT DISTINCT (l.scored_at AT TIME ZONE 'UTC')::date AS day, {CARD} AS card
FROM labelled l CROSS JOIN LATERAL ({SCORE_OF_LABEL}) s
WHERE l.label = 1
"""
# The cards of the rows of the day [$1, $2) scoring at least as high as its $3-th highest score (all of
# the day when it has fewer), with their highest score: any card left out scores lower than every card in.
TOP_CARDS = f"""
WITH lowest AS (
    SELECT coalesce((
        SELECT score FROM fraud_scores WHERE scored_at >= $1 AND scored_at < $2
        ORDER BY score DESC OFFSET $3 - 1 LIMIT 1
    ), '-infinity') AS score
)
SELECT {CARD} AS card, max(s.score) AS score
FROM fraud_scores s, lowest
WHERE s.scored_at >= $1 AND s.scored_at < $2 AND s.score >= lowest.score
GROUP BY 1
"""
MORE_ROWS = (
    "SELECT count(*) > $3 FROM (SELECT 1 FROM fraud_scores WHERE scored_at >= $1 AND scored_at < $2"
    " LIMIT $3 + 1) AS day"
)
UNSCORED_LABELS = "SELECT count(DISTINCT transaction_id) FROM fraud_labels WHERE scored_at IS NULL"
COUNTS = ["transactions", "alerts", "reviewed", "confirmed", "labelled", "labelled_frauds", "top_k_frauds"]
REFRESH_S = 60.0
CANDIDATE_ROWS_PER_CARD = 10
DEFAULT_DAYS = 14  # the quality page's window, ending today


@dataclass(frozen=True)
class Quality:
    """Per-day figures (``daily``, one row per day with a score) and their totals over the window."""

    daily: pd.DataFrame
    window: dict[str, float | int | None]
    unscored_labels: int
    budget: int


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def with_rates(counts: pd.DataFrame, budget: int) -> pd.DataFrame:
    """The daily counts plus precision, recall, card precision at k (NaN where nothing is labelled)
    and whether the alerts were over budget."""
    daily = counts.astype(dict.fromkeys(COUNTS, "int64"))
    daily["precision"] = daily["confirmed"] / daily["reviewed"].replace(0, np.nan)
    daily["recall"] = daily["confirmed"] / daily["labelled_frauds"].replace(0, np.nan)
    daily["card_precision_at_k"] = daily["top_k_frauds"] / budget
    daily["over_budget"] = daily["alerts"] > budget
    return daily


def window_totals(daily: pd.DataFrame, budget: int) -> dict[str, float | int | None]:
    """The window's sums, its precision and recall from those sums, and the mean daily card precision
    at k (the Handbook averages it over days)."""
    sums = {name: int(daily[name].sum()) for name in COUNTS}
    days = len(daily)
    return {
        **sums,
        "days": days,
        "alerts_per_day": sums["alerts"] / days if days else None,
        "budget": budget,
        "precision": _ratio(sums["confirmed"], sums["reviewed"]),
        "recall": _ratio(sums["confirmed"], sums["labelled_frauds"]),
        "card_precision_at_k": float(daily["card_precision_at_k"].mean()) if days else None,
    }


async def load_quality(connection: asyncpg.Connection, start: date, end: date, budget: int) -> Quality:
    """Quality of the days from ``start`` to ``end`` inclusive (UTC)."""
    since = datetime.combine(start, time(), UTC)
    until = datetime.combine(end + timedelta(days=1), time(), UTC)
    rows = await connection.fetch(DAILY, since, until)
    frauds: dict[date, set[str]] = {}
    for row in await connection.fetch(FRAUD_CARDS, since, until):
        frauds.setdefault(row["day"], set()).add(row["card"])
    counts = pd.DataFrame([dict(row) for row in rows], columns=["day", *COUNTS[:-1]])
    counts["top_k_frauds"] = [
        len(frauds.get(day, set()).intersection(await top_cards(connection, day, budget)))
        for day in counts["day"]
    ]
    counts["day"] = pd.to_datetime(counts["day"])
    daily = with_rates(counts, budget)
    return Quality(daily, window_totals(daily, budget), await connection.fetchval(UNSCORED_LABELS), budget)


async def top_cards(connection: asyncpg.Connection, day: date, budget: int) -> list[str]:
    """The ``budget`` cards of ``day`` with the highest score (ties: by card).

    Read from the day's top rows by score (index ``fraud_scores_score``): ten rows per card at first,
    four times more while they hold fewer than ``budget`` cards and the day has more rows.
    """
    since = datetime.combine(day, time(), UTC)
    until = since + timedelta(days=1)
    rows = budget * CANDIDATE_ROWS_PER_CARD
    while True:
        cards = await connection.fetch(TOP_CARDS, since, until, rows)
        if len(cards) >= budget or not await _more_rows(connection, since, until, rows):
            break
        rows *= 4
    ranked = sorted(cards, key=lambda card: (-card["score"], card["card"]))
    return [card["card"] for card in ranked[:budget]]


async def _more_rows(connection: asyncpg.Connection, since: datetime, until: datetime, rows: int) -> bool:
    """Whether more than ``rows`` transactions were scored in [since, until)."""
    return await connection.fetchval(MORE_ROWS, since, until, rows)


class QualityGauges:
    """Today's quality (UTC) as Prometheus gauges, refreshed every ``REFRESH_S`` seconds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stop = asyncio.Event()
        self.gauges = {
            "alerts": Gauge("fraudstream_alerts_today", "transactions flagged today (UTC)"),
            "reviewed": Gauge("fraudstream_alerts_reviewed_today", "today's alerts with a label"),
            "precision": Gauge(
                "fraudstream_alert_precision", "today's reviewed alerts labelled fraud (share)"
            ),
            "recall": Gauge(
                "fraudstream_recall_estimate", "today's labelled frauds that were flagged (share)"
            ),
            "card_precision_at_k": Gauge("fraudstream_card_precision_at_k", "today's card precision at k"),
            "budget": Gauge("fraudstream_alert_budget", "alerts the analysts can review per day"),
        }

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.refresh()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                logger.warning("quality gauges not refreshed", extra=fields(error=repr(error)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), REFRESH_S)

    async def refresh(self) -> None:
        today = datetime.now(UTC).date()
        connection = await asyncpg.connect(self.settings.pg_dsn, timeout=10)
        try:
            figures = (await load_quality(connection, today, today, self.settings.alert_budget)).window
        finally:
            await connection.close()
        for name, gauge in self.gauges.items():
            value = figures[name]
            gauge.set(float("nan") if value is None else value)
