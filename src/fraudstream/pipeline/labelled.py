"""What production saw, with its labels: the stored transactions of ``fraud_scores`` joined with
``current_labels`` (analysts' decisions and chargebacks, the latest per transaction)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pandas as pd

from fraudstream.contracts import schema

SHADOW_PAIRS = """
SELECT s.transaction_id::text AS transaction_id, s.scored_at, s.score, s.shadow_score, l.label
FROM fraud_scores s JOIN current_labels l USING (transaction_id)
WHERE s.model_version = $1 AND s.shadow_version = $2 AND s.scored_at >= $3 AND s.scored_at < $4
"""

STORED_TRANSACTIONS = """
SELECT s.transaction, s.scored_at, l.label
FROM fraud_scores s LEFT JOIN current_labels l USING (transaction_id)
WHERE s.transaction IS NOT NULL AND s.scored_at >= $1 AND s.scored_at < $2
"""


@dataclass(frozen=True)
class TrainingRows:
    """Stored transactions in the input format with ``target``, and how each target was decided."""

    frame: pd.DataFrame
    counts: dict[str, int]
    rule: str


def shadow_pairs(dsn: str, champion: str, challenger: str, since: datetime, until: datetime) -> pd.DataFrame:
    """Labelled transactions of the window scored by ``champion`` with ``challenger`` in shadow."""
    rows = asyncio.run(_fetch(dsn, SHADOW_PAIRS, champion, challenger, since, until))
    columns = ["transaction_id", "scored_at", "score", "shadow_score", "label"]
    return pd.DataFrame([dict(row) for row in rows], columns=columns)


def training_rows(
    dsn: str, since: datetime, until: datetime, maturity: timedelta, now: datetime
) -> TrainingRows:
    """The window's stored transactions with a target: the current label where there is one; else 0
    (legitimate) once the transaction is older than ``maturity`` (a fraud is reported within that time);
    younger unlabelled ones are left out, their outcome still unknown."""
    rows = asyncio.run(_fetch(dsn, STORED_TRANSACTIONS, since, until))
    mature_before = now - maturity
    records, targets = [], []
    counts = {"stored": len(rows), "labelled_fraud": 0, "labelled_legitimate": 0, "unlabelled_matured": 0}
    counts["unlabelled_too_recent"] = 0
    for row in rows:
        if row["label"] is not None:
            target = int(row["label"])
            counts["labelled_fraud" if target else "labelled_legitimate"] += 1
        elif row["scored_at"] <= mature_before:
            target = 0
            counts["unlabelled_matured"] += 1
        else:
            counts["unlabelled_too_recent"] += 1
            continue
        records.append(orjson.loads(row["transaction"]))
        targets.append(target)
    frame = schema.coerce(pd.DataFrame.from_records(records, columns=list(schema.INPUT_COLUMNS)))
    frame[schema.TARGET_COLUMN] = targets
    rule = (
        f"a transaction's target is its current label (current_labels); an unlabelled one scored before "
        f"{mature_before:%Y-%m-%d %H:%M} UTC (older than {maturity.days} days) counts as legitimate; "
        "younger unlabelled ones are left out"
    )
    return TrainingRows(frame, counts, rule)


async def _fetch(dsn: str, query: str, *arguments: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetch(query, *arguments)
    finally:
        await connection.close()
