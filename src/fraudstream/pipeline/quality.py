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
DAILY = """
WITH scored AS (
    SELECT s.score, s.fraud_flag, l.label,
           (s.scored_at AT TIME ZONE 'UTC')::date AS day,
           CASE WHEN s.transaction IS NULL THEN s.transaction_id::text
                ELSE concat_ws(chr(31), s.transaction->>'name_1', s.transaction->>'name_2',
                               s.transaction->>'street', s.transaction->>'post_code') END AS card
    FROM fraud_scores s LEFT JOIN current_labels l USING (transaction_id)
    WHERE s.scored_at >= $1 AND s.scored_at < $2
),
daily AS (
    SELECT day,
           count(*) AS transactions,
           count(*) FILTER (WHERE fraud_flag = 1) AS alerts,
           count(*) FILTER (WHERE fraud_flag = 1 AND label IS NOT NULL) AS reviewed,
           count(*) FILTER (WHERE fraud_flag = 1 AND label = 1) AS confirmed,
           count(*) FILTER (WHERE label IS NOT NULL) AS labelled,
           count(*) FILTER (WHERE label = 1) AS labelled_frauds
    FROM scored GROUP BY day
),
cards AS (SELECT day, card, max(score) AS score, max(label) AS fraud FROM scored GROUP BY day, card),
ranked AS (
    SELECT day, fraud, row_number() OVER (PARTITION BY day ORDER BY score DESC, card) AS rank FROM cards
)
SELECT daily.*, count(*) FILTER (WHERE ranked.fraud = 1) AS top_k_frauds
FROM daily JOIN ranked USING (day)
WHERE ranked.rank <= $3
GROUP BY daily.day, daily.transactions, daily.alerts, daily.reviewed, daily.confirmed,
         daily.labelled, daily.labelled_frauds
ORDER BY daily.day
"""
UNSCORED_LABELS = """
SELECT count(*) FROM current_labels l
WHERE NOT EXISTS (SELECT 1 FROM fraud_scores s WHERE s.transaction_id = l.transaction_id)
"""
COUNTS = ["transactions", "alerts", "reviewed", "confirmed", "labelled", "labelled_frauds", "top_k_frauds"]
REFRESH_S = 60.0
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
    rows = await connection.fetch(DAILY, since, until, budget)
    counts = pd.DataFrame([dict(row) for row in rows], columns=["day", *COUNTS])
    counts["day"] = pd.to_datetime(counts["day"])
    daily = with_rates(counts, budget)
    return Quality(daily, window_totals(daily, budget), await connection.fetchval(UNSCORED_LABELS), budget)


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
