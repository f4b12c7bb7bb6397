"""`labels export`: the labelled transactions with their input, in the training format (``target``).

Each transaction's current label is its target. A label whose transaction has no stored input (its
score has not arrived, or was written without it) cannot be a training row: it is counted and
reported as skipped, never silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from fraudstream.config import Settings
from fraudstream.contracts.schema import INPUT_COLUMNS, TARGET_COLUMN, from_columns
from fraudstream.pipeline import postgres

LABELLED = """
SELECT l.transaction_id::text AS transaction_id, l.label, s.transaction
FROM current_labels l LEFT JOIN fraud_scores s USING (transaction_id)
WHERE l.labelled_at >= $1
ORDER BY s.transaction->>'transaction_time', l.transaction_id
"""


@dataclass(frozen=True)
class ExportReport:
    written: int
    frauds: int
    skipped: list[str]  # transaction ids whose input is not stored


def training_frame(rows: list[dict]) -> tuple[pd.DataFrame, list[str]]:
    """The rows with an input as a training table, and the ids of those without one."""
    usable = [row for row in rows if row["transaction"] is not None]
    skipped = [row["transaction_id"] for row in rows if row["transaction"] is None]
    inputs = [row["transaction"] for row in usable]
    frame = from_columns({column: [values[column] for values in inputs] for column in INPUT_COLUMNS})
    frame[TARGET_COLUMN] = pd.array([row["label"] for row in usable], dtype="int64")
    return frame, skipped


def export_labels(settings: Settings, since: datetime, out: Path) -> ExportReport:
    """Write the transactions labelled since ``since`` to ``out`` (CSV); raises OSError or
    ``DatabaseUnavailable``."""
    rows = postgres.run(settings.pg_dsn, lambda connection: connection.fetch(LABELLED, since), timeout=10)
    frame, skipped = training_frame([dict(row) for row in rows])
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    return ExportReport(written=len(frame), frauds=int(frame[TARGET_COLUMN].sum()), skipped=skipped)
