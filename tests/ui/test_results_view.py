"""The results view and its queries: against the session's real PostgreSQL, and with no database."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from fraudstream.config import DEFAULT_MODEL_PATH, Settings
from fraudstream.ui import queries
from tests.helpers import execute, model_with_threshold
from tests.ui.conftest import Page

FLAGGED_INPUT = {"transaction_time": "2019-09-14 02:46", "amount": 1234.5, "merch": "fraud_Kub"}
REASONS = [{"feature": "amount", "contribution": 2.5}, {"feature": "hour", "contribution": 0.7}]


def insert_scores(settings: Settings) -> tuple[str, str]:
    """A flagged row (with its input and reasons) and a clean one, scored now; their ids."""
    flagged, clean = str(uuid.uuid4()), str(uuid.uuid4())

    async def insert() -> None:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            await connection.executemany(
                "INSERT INTO fraud_scores (transaction_id, score, fraud_flag, reasons, transaction)"
                " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb)",
                [
                    (clean, 0.02, 0, None, None),
                    (flagged, 0.97, 1, json.dumps(REASONS), json.dumps(FLAGGED_INPUT)),
                ],
            )
        finally:
            await connection.close()

    asyncio.run(insert())
    return flagged, clean


def database_totals(settings: Settings) -> queries.Totals:
    return queries.load_results(settings).totals


def show_results(page: Page) -> AppTest:
    app = page("results_page.py").run()
    app.button[0].click().run()
    assert app.button[0].label == "Show results"
    return app


def test_with_the_database_down_the_view_says_so(page, nothing_env):
    app = show_results(page)

    assert not app.exception
    [error] = app.error
    assert f"PostgreSQL at localhost:{nothing_env.pg_port}/fraud is unavailable" in error.value


def test_auto_refresh_shows_the_results_without_the_button(page, nothing_env):
    app = page("results_page.py").run()
    assert not app.error

    app.toggle(key="auto_refresh").set_value(True).run()

    assert "unavailable" in app.error[0].value


@pytest.mark.integration
def test_the_view_shows_totals_recent_frauds_details_and_histogram(page, stack_env):
    flagged, _ = insert_scores(stack_env)
    totals = database_totals(stack_env)

    app = show_results(page)

    assert not app.exception and not app.error
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Scored"] == f"{totals.scored:,}" and metrics["Flagged as fraud"] == f"{totals.flagged:,}"
    table = app.dataframe[0].value
    assert table.iloc[0]["transaction id"] == flagged
    assert (table.iloc[0]["amount"], table.iloc[0]["top reason"]) == (1234.5, "amount")
    assert app.selectbox(key="fraud_detail").value == flagged
    assert metrics["Score"] == "0.970"
    fields = app.table[0].value.set_index("field")["value"]
    assert fields["merch"] == "fraud_Kub" and fields["amount"] == "1234.5"
    specs = [chart.proto.spec for chart in app.get("vega_lite_chart")]
    assert len(specs) == 3  # reasons, histogram, throughput
    assert '"feature"' in specs[0] and '"extent": [0, 1]' in specs[1] and '"bucket"' in specs[2]


@pytest.mark.integration
def test_the_table_shows_the_analysts_label_and_who_gave_it(page, stack_env):
    undecided, _ = insert_scores(stack_env)
    flagged, _ = insert_scores(stack_env)
    execute(
        stack_env,
        "INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at)"
        " VALUES ($1, $2, 1, 'analyst', 'ann', now())",
        (uuid.uuid4(), uuid.UUID(flagged)),
    )

    table = show_results(page).dataframe[0].value.set_index("transaction id")

    assert table.loc[flagged, "label"] == "fraud (ann)"
    assert table.loc[undecided, "label"] == "not reviewed"


@pytest.mark.integration
def test_a_transaction_blocked_by_a_rule_is_an_alert_with_its_action_and_rules(page, stack_env):
    """Not flagged by the model, blocked by a rule: listed with the rule; allowed ones are not alerts."""
    blocked, allowed = str(uuid.uuid4()), str(uuid.uuid4())
    execute(
        stack_env,
        "INSERT INTO fraud_scores (transaction_id, score, fraud_flag, decision, rules)"
        " VALUES ($1, 0.1, 0, $2, $3::jsonb)",
        (blocked, "block", json.dumps([{"id": "big-net", "version": 3}])),
        (allowed, "allow", "[]"),
    )
    blocked_before = queries.load_results(stack_env).totals.blocked

    app = show_results(page)

    table = app.dataframe[0].value.set_index("transaction id")
    assert (table.loc[blocked, "action"], table.loc[blocked, "rules"]) == ("block", "big-net v3")
    assert allowed not in table.index
    assert {m.label: m.value for m in app.metric}["Blocked"] == f"{blocked_before:,}"


@pytest.mark.integration
def test_throughput_counts_the_rows_scored_in_each_bucket(stack_env):
    insert_scores(stack_env)

    buckets = queries.load_results(stack_env).throughput

    expected = queries.THROUGHPUT_WINDOW_S // queries.THROUGHPUT_BUCKET_S
    assert len(buckets) in (expected, expected + 1)
    assert buckets["bucket"].diff().dropna().dt.total_seconds().eq(queries.THROUGHPUT_BUCKET_S).all()
    assert buckets["rows"].tail(2).sum() >= 2  # the bucket of now, or the one before if it just ended


@pytest.mark.integration
@pytest.mark.parametrize(
    ("override", "marked", "source"), [(None, 0.3, "model metadata"), ("0.7", 0.7, "setting")]
)
def test_the_histogram_marks_the_threshold_the_detector_uses(
    page, stack_env, monkeypatch, tmp_path, override, marked, source
):
    insert_scores(stack_env)
    model = model_with_threshold(DEFAULT_MODEL_PATH, tmp_path / "model", 0.3)
    monkeypatch.setenv("FRAUDSTREAM_MODEL_PATH", str(model))
    if override is not None:
        monkeypatch.setenv("FRAUDSTREAM_THRESHOLD", override)

    app = show_results(page)

    assert not app.exception and not app.error and not app.warning
    charts = [chart.proto for chart in app.get("vega_lite_chart")]
    [histogram] = [chart for chart in charts if '"extent": [0, 1]' in chart.spec]
    tables = [pa.ipc.open_stream(dataset.data.data).read_all() for dataset in histogram.datasets]
    rules = [table.column("threshold").to_pylist() for table in tables if "threshold" in table.column_names]
    assert rules == [[marked]]
    assert any(f"Threshold {marked} (dashed line), from the {source}" in c.value for c in app.caption)
