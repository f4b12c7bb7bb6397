"""Shaping the query results for display, and the charts built from them."""

from __future__ import annotations

import json

import pandas as pd

from fraudstream.contracts.schema import INPUT_COLUMNS
from fraudstream.ui import charts, tables

REASONS = [{"feature": "amount", "contribution": 0.4}, {"feature": "hour", "contribution": 1.2}]
TRANSACTION = {"transaction_time": "2019-01-01 00:00", "amount": 912.5, "merch": "shop", "cat_id": "travel"}


def frauds(transaction: dict | None, reasons: list | None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "scored_at": [pd.Timestamp("2025-01-01", tz="UTC")],
            "transaction_id": ["0f6b7a4e-0000-4000-8000-000000000001"],
            "score": [0.97],
            "model_version": ["v1"],
            "reasons": [reasons],
            "transaction": [transaction],
        }
    )


def test_reasons_are_ranked_by_contribution():
    assert tables.reasons_frame(REASONS)["feature"].tolist() == ["hour", "amount"]


def test_the_fraud_table_summarises_input_and_top_reason():
    row = tables.fraud_table(frauds(TRANSACTION, REASONS)).iloc[0]

    summary = (row["amount"], row["merchant"], row["category"], row["top reason"])
    assert summary == (912.5, "shop", "travel", "hour")


def test_a_fraud_without_stored_input_or_reasons_still_has_a_line():
    table = tables.fraud_table(frauds(None, None))

    assert len(table) == 1 and table.iloc[0]["top reason"] is None and pd.isna(table.iloc[0]["amount"])


def test_input_fields_follow_the_input_format_order():
    fields = tables.input_fields(TRANSACTION)

    assert fields["field"].tolist() == [c for c in INPUT_COLUMNS if c in TRANSACTION]
    assert tables.input_fields(None).empty


def test_the_score_histogram_bins_0_to_1_and_marks_the_threshold():
    spec = json.dumps(charts.score_histogram(pd.Series([0.1, 0.9], name="score"), 0.5).to_dict())

    assert '"extent": [0, 1]' in spec and '"threshold": 0.5' in spec


def test_with_no_fraud_the_table_is_empty_with_its_columns():
    table = tables.fraud_table(frauds(None, None).iloc[0:0])

    assert table.empty and list(table.columns)[:3] == ["scored at", "transaction id", "score"]


def test_the_table_shows_the_action_and_the_matched_rules_beside_the_analysts_label():
    alerts = pd.concat([frauds(TRANSACTION, REASONS)] * 3, ignore_index=True).assign(
        decision=["block", "allow", None],
        rules=[[{"id": "big-net", "version": 2}, {"id": "night", "version": 1}], [], None],
        label=[1, None, None],
        author=["ann", None, None],
    )

    table = tables.fraud_table(alerts)

    assert table["action"].tolist() == ["block", "allow", "not decided"]  # None: scored before rules
    assert table["rules"].tolist() == ["big-net v2, night v1", "", ""]
    assert table["label"].tolist() == ["fraud (ann)", "not reviewed", "not reviewed"]
