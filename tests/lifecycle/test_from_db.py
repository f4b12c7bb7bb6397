"""`train --from-db`: training on the transactions production stored, with their labels."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import numpy as np
import pytest

from fraudstream.config import Settings
from fraudstream.contracts import schema
from fraudstream.ml.model import FraudModel
from fraudstream.ml.tracking import log_and_register
from fraudstream.pipeline.lifecycle import Window, train_from_db
from tests.lifecycle.labels import insert_labels
from tests.unit.transactions import synthetic

pytestmark = pytest.mark.integration


def store(settings: Settings, frame, scored_at: list[datetime]) -> list[str]:
    """Rows in fraud_scores as the sink writes them: each with its input transaction."""
    ids = [str(uuid.uuid4()) for _ in range(len(frame))]
    inputs = [
        json.dumps(row) for row in json.loads(frame[list(schema.INPUT_COLUMNS)].to_json(orient="records"))
    ]

    async def insert() -> None:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            await connection.execute("SELECT fraud_scores_add_partitions($1::timestamptz[])", scored_at)
            await connection.execute(
                "INSERT INTO fraud_scores"
                " (transaction_id, score, fraud_flag, model_version, transaction, scored_at)"
                " SELECT id, 0.1, 0, 'stored-test', t::jsonb, at"
                " FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS rows (id, t, at)",
                ids,
                inputs,
                scored_at,
            )
        finally:
            await connection.close()

    asyncio.run(insert())
    return ids


def test_train_from_db_labels_by_the_maturity_rule_and_registers(registry_settings, registry, tmp_path: Path):
    settings = registry_settings.model_copy(update={"label_maturity_days": 30})
    frame = synthetic(customers=50, days=60, seed=7)
    now = datetime.now(UTC)
    recent = np.arange(len(frame)) >= len(frame) - 200  # the last 200 rows were scored 2 days ago
    scored_at = [now - timedelta(days=2 if late else 40) for late in recent]
    ids = store(settings, frame, scored_at)
    target = frame[schema.TARGET_COLUMN].to_numpy()
    fraud = [i for i in range(len(frame)) if target[i] == 1]
    cleared = [i for i in range(len(frame)) if target[i] == 0][:100]  # analysts' "legitimate" decisions
    insert_labels(settings, [ids[i] for i in fraud], [1] * len(fraud), source="chargeback")
    insert_labels(settings, [ids[i] for i in cleared], [0] * len(cleared))

    window = Window(now - timedelta(days=41), now)
    report = train_from_db(settings, window, tmp_path / "model", now=now, iterations=60)

    counts = report["labels"]["counts"]
    immature = int((recent & (target == 0)).sum()) - len([i for i in cleared if recent[i]])
    assert counts["labelled_fraud"] == len(fraud) and counts["labelled_legitimate"] == len(cleared)
    assert counts["unlabelled_too_recent"] == immature
    assert counts["unlabelled_matured"] == len(frame) - len(fraud) - len(cleared) - immature
    assert "older than 30 days" in report["labels"]["rule"]
    assert report["data"]["rows"] == len(frame) - immature
    assert report["validation"]["pr_auc"] > 0.8  # validated on the latest part of the period
    assert "## Labels" in (tmp_path / "model" / "report.md").read_text()
    assert FraudModel.load(tmp_path / "model").metadata["labels"]["counts"] == counts

    version = log_and_register(registry, tmp_path / "model", report)
    assert version.tags["has_reference"] == "true" and version.tags["sha256"]
    run = registry.client.get_run(version.run_id)
    assert run.data.metrics["validation_pr_auc"] == pytest.approx(report["validation"]["pr_auc"])
    assert "pr_curve.png" in {item.path for item in registry.client.list_artifacts(version.run_id)}
