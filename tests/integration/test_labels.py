"""Labels end to end on the real stack: the labels consumer runs in the session's sink process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, date, datetime

import asyncpg
import orjson
import pandas as pd
import pytest
from confluent_kafka import Producer

from fraudstream.config import Settings
from fraudstream.contracts.messages import ReceivedInput, ScoreMessage, encoder, new_label
from fraudstream.contracts.schema import INPUT_COLUMNS, TARGET_COLUMN
from fraudstream.pipeline import kafka
from fraudstream.pipeline.labels import publish_labels
from fraudstream.pipeline.quality import QualityGauges, load_quality
from fraudstream.ui.queries import read, recent_frauds
from tests.helpers import end_offsets, execute, fetch, input_rows, insert_score, labels_of, read_all, wait_for

pytestmark = pytest.mark.integration


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.environment()}
    return subprocess.run(
        [sys.executable, "-m", "fraudstream", "labels", *args], env=env, capture_output=True, text=True
    )


def test_the_same_label_twice_is_one_row_of_history(stack_settings, services):
    transaction_id = uuid.uuid4()
    label = new_label(transaction_id, 1, "analyst", "ann", datetime.now(UTC), "twice")
    later = new_label(transaction_id, 0, "analyst", "bob", datetime.now(UTC), "after the repeats")

    publish_labels(stack_settings, [label, label])
    publish_labels(stack_settings, [label, later])  # same key: one partition, in this order

    wait_for(lambda: len(labels_of(stack_settings, transaction_id)) >= 2, 30, "the labels", services["sink"])
    assert labels_of(stack_settings, transaction_id) == [
        {"label": 1, "source": "analyst", "author": "ann", "note": "twice"},
        {"label": 0, "source": "analyst", "author": "bob", "note": "after the repeats"},
    ]


def test_a_label_before_its_score_is_kept_and_joined_when_the_score_arrives(stack_settings, services):
    transaction_id = uuid.uuid4()
    publish_labels(stack_settings, [new_label(transaction_id, 1, "chargeback", "bank", datetime.now(UTC))])
    wait_for(lambda: labels_of(stack_settings, transaction_id), 30, "the early label", services["sink"])
    assert not fetch(stack_settings, "SELECT 1 FROM fraud_scores WHERE transaction_id = $1", transaction_id)

    row = {"transaction_id": str(transaction_id), "data": input_rows(1, seed=5)[0]}
    score = ScoreMessage(
        transaction_id, 0.93, 1, model_version="test", input=ReceivedInput(orjson.dumps(row))
    )
    producer = Producer(kafka.producer_config(stack_settings))
    producer.produce(stack_settings.topic_scoring, encoder.encode(score))
    producer.flush(10)

    def joined() -> pd.Series | None:
        frauds = read(stack_settings, recent_frauds).set_index("transaction_id")
        return frauds.loc[str(transaction_id)] if str(transaction_id) in frauds.index else None

    wait_for(lambda: joined() is not None, 30, "the score", services["sink"])
    assert (joined()["label"], joined()["author"]) == (1, "bank")


def test_a_malformed_label_lands_in_the_labels_dlq_with_its_reason(stack_settings, services):
    good = new_label(uuid.uuid4(), 1, "analyst", "ann", datetime.now(UTC))
    bad = {
        f"not json {uuid.uuid4()}".encode(): "JSON is malformed",
        encoder.encode({**orjson.loads(encoder.encode(good)), "label": 7}): "Expected `int` <= 1",
        encoder.encode({**orjson.loads(encoder.encode(good)), "author": "eve"}): "does not match its content",
    }
    producer = Producer(kafka.producer_config(stack_settings))
    for value in bad:
        producer.produce(stack_settings.topic_labels, value, str(good.transaction_id).encode())
    producer.flush(10)
    publish_labels(stack_settings, [good])

    wait_for(lambda: labels_of(stack_settings, good.transaction_id), 30, "the good label", services["sink"])
    dead = {m["value"]: m["headers"] for m in read_all(stack_settings, stack_settings.dlq_labels, len(bad))}
    for value, reason in bad.items():
        assert reason in dead[value]["error"].decode()
        assert dead[value]["source.topic"] == stack_settings.topic_labels.encode()
    assert services["sink"].process.poll() is None


def test_a_bad_label_file_is_refused_with_its_rows_and_nothing_is_sent(stack_settings, tmp_path):
    file = tmp_path / "chargebacks.csv"
    file.write_text(f"transaction_id,label\n{uuid.uuid4()},1\n12345,1\n{uuid.uuid4()},maybe\n")
    before = end_offsets(stack_settings, stack_settings.topic_labels)

    result = cli(stack_settings, "import", str(file))

    assert result.returncode == 1
    assert "2 bad row(s), nothing sent: line 3: transaction_id '12345' is not a UUID" in result.stderr
    assert "line 4: label 'maybe' is not 0 (legitimate) or 1 (fraud)" in result.stderr
    assert end_offsets(stack_settings, stack_settings.topic_labels) == before


def test_an_imported_chargeback_file_updates_the_quality_figures(stack_settings, services, tmp_path):
    today = datetime.now(UTC).date()
    flagged, missed = (
        insert_score(stack_settings, s, f, row)
        for (s, f), row in zip([(0.9, 1), (0.1, 0)], input_rows(2, 7), strict=True)
    )
    before = quality_window(stack_settings, today)
    file = tmp_path / "chargebacks.csv"
    file.write_text(f"transaction_id,label,note\n{flagged},1,disputed\n{missed},1,disputed\n")

    result = cli(stack_settings, "import", str(file), "--author", "bank-feed")

    assert result.returncode == 0, result.stderr
    wait_for(lambda: labels_of(stack_settings, missed), 30, "the imported labels", services["sink"])
    assert labels_of(stack_settings, flagged)[0] == {
        "label": 1, "source": "chargeback", "author": "bank-feed", "note": "disputed"
    }  # fmt: skip
    after = quality_window(stack_settings, today)
    changes = {
        name: after[name] - before[name] for name in ("reviewed", "confirmed", "labelled_frauds", "alerts")
    }
    assert changes == {"reviewed": 1, "confirmed": 1, "labelled_frauds": 2, "alerts": 0}


def quality_window(settings: Settings, day: date) -> dict:
    return read(settings, lambda connection: load_quality(connection, day, day, settings.alert_budget)).window


def test_export_writes_the_labelled_transactions_in_the_training_format(stack_settings, services, tmp_path):
    rows = input_rows(2, 11)
    fraud, legitimate = (
        insert_score(stack_settings, 0.8, 1, rows[0]),
        insert_score(stack_settings, 0.7, 1, rows[1]),
    )
    unscored = uuid.uuid4()
    file = tmp_path / "labels.csv"
    at = "2030-06-01T00:00:00Z"  # a period of this test's own
    file.write_text(f"transaction_id,label,at\n{fraud},1,{at}\n{legitimate},0,{at}\n{unscored},1,{at}\n")
    assert cli(stack_settings, "import", str(file)).returncode == 0
    wait_for(lambda: labels_of(stack_settings, unscored), 30, "the labels", services["sink"])

    result = cli(stack_settings, "export", str(tmp_path / "train.csv"), "--since", "2030-06-01")

    assert result.returncode == 0, result.stderr
    assert "wrote 2 labelled transaction(s) (1 fraud)" in result.stderr
    assert f"skipped 1 labelled transaction(s) whose input is not stored, e.g. {unscored}" in result.stderr
    exported = pd.read_csv(tmp_path / "train.csv")
    assert list(exported.columns) == [*INPUT_COLUMNS, TARGET_COLUMN]
    expected = pd.DataFrame(rows).assign(target=[1, 0])[exported.columns]
    order = ["transaction_time", "amount"]
    pd.testing.assert_frame_equal(
        exported.sort_values(order, ignore_index=True),
        expected.sort_values(order, ignore_index=True),
        check_dtype=False,
    )


def test_the_quality_figures_of_a_hand_made_table(stack_settings):
    """Two days, budget k = 2 (see the comments for each transaction's part in the figures)."""
    day_1, day_2 = datetime(2001, 3, 1, 12, tzinfo=UTC), datetime(2001, 3, 2, 12, tzinfo=UTC)
    card_a, card_b, card_c, card_d, card_e = input_rows(5, 13)
    t1 = insert_score(stack_settings, 0.9, 1, card_a, day_1)  # alert, confirmed fraud
    t2 = insert_score(stack_settings, 0.8, 1, card_a, day_1)  # alert, fraud then corrected to legitimate
    insert_score(stack_settings, 0.7, 1, card_b, day_1)  # alert never reviewed
    t4 = insert_score(stack_settings, 0.6, 1, card_c, day_1)  # alert, legitimate
    t5 = insert_score(stack_settings, 0.2, 0, card_d, day_1)  # missed fraud (a chargeback)
    insert_score(stack_settings, 0.1, 0, card_e, day_1)  # never labelled
    t7 = insert_score(stack_settings, 0.95, 1, card_a, day_2)  # alert, confirmed
    insert_score(stack_settings, 0.3, 0, None, day_2)  # no input: a card of its own
    labels = [
        (t1, 1, 10),
        (t2, 1, 10),
        (t2, 0, 11),
        (t4, 0, 10),
        (t5, 1, 10),
        (t7, 1, 10),
        (uuid.uuid4(), 1, 10),
    ]
    execute(
        stack_settings,
        "INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at)"
        " VALUES ($1, $2, $3, 'analyst', 'ann', $4)",
        *[(uuid.uuid4(), tid, label, datetime(2001, 3, 5, hour, tzinfo=UTC)) for tid, label, hour in labels],
    )

    quality = read(stack_settings, lambda connection: load_quality(connection, day_1.date(), day_2.date(), 2))

    daily = quality.daily.set_index(quality.daily["day"].dt.strftime("%d"))
    assert daily.loc[
        "01", ["transactions", "alerts", "reviewed", "confirmed", "labelled", "labelled_frauds"]
    ].tolist() == [6, 4, 3, 1, 4, 2]
    assert daily.loc["01", ["precision", "recall", "card_precision_at_k"]].tolist() == [1 / 3, 0.5, 0.5]
    assert daily.loc[
        "02", ["alerts", "reviewed", "confirmed", "precision", "recall", "card_precision_at_k"]
    ].tolist() == [1, 1, 1, 1.0, 1.0, 0.5]
    expected = {"alerts": 5, "reviewed": 4, "confirmed": 2, "precision": 0.5, "card_precision_at_k": 0.5}
    assert {name: quality.window[name] for name in expected} == expected
    assert quality.window["recall"] == pytest.approx(2 / 3)
    assert quality.unscored_labels >= 1


def test_the_top_cards_of_a_day_whose_top_scores_are_one_cards(stack_settings):
    """Budget k = 2 on a day of 28 scores where one card holds the 25 highest: its top rows hold fewer
    than k cards, so more rows are read until they do; a card's fraud counts from its lowest score."""
    day = datetime(2002, 6, 1, 12, tzinfo=UTC)
    card_a, card_b, card_c = input_rows(3, 29)
    a_rows = [insert_score(stack_settings, 0.99 - n / 100, 1, card_a, day) for n in range(25)]
    b = insert_score(stack_settings, 0.5, 0, card_b, day)
    c = insert_score(stack_settings, 0.6, 1, card_c, day)
    insert_score(stack_settings, 0.1, 0, None, day)
    execute(
        stack_settings,
        "INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at)"
        " VALUES (gen_random_uuid(), $1, $2, 'analyst', 'ann', now())",
        (a_rows[-1], 1),  # card A's lowest score (0.75), far from the top rows
        (b, 1),  # fraud, but card B is third
        (c, 0),
    )

    quality = read(stack_settings, lambda connection: load_quality(connection, day.date(), day.date(), 2))

    assert quality.daily[["transactions", "alerts", "top_k_frauds"]].values.tolist() == [[28, 26, 1]]
    assert quality.window["card_precision_at_k"] == 0.5


def test_the_sink_exports_todays_quality_as_gauges(stack_settings, services):
    insert_score(stack_settings, 0.99, 1, input_rows(1, seed=17)[0])
    gauges = QualityGauges(stack_settings)

    asyncio.run(gauges.refresh())

    today = datetime.now(UTC).date()
    window = quality_window(stack_settings, today)
    exported = {name: gauge._value.get() for name, gauge in gauges.gauges.items()}
    assert exported["alerts"] == window["alerts"] >= 1
    assert exported["budget"] == stack_settings.alert_budget
    assert exported["card_precision_at_k"] == window["card_precision_at_k"]
    metrics = services["sink"].metrics()
    for name in ("alerts_today", "alert_precision", "recall_estimate", "card_precision_at_k"):
        assert f"\nfraudstream_{name} " in metrics


def test_the_ui_role_reads_labels_and_cannot_write_them(stack_settings):
    async def attempt() -> tuple[int, str]:
        connection = await asyncpg.connect(stack_settings.pg_reader_dsn)
        try:
            visible = await connection.fetchval("SELECT count(*) FROM current_labels")
            with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
                await connection.execute(
                    "INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at)"
                    " VALUES (gen_random_uuid(), gen_random_uuid(), 1, 'analyst', 'ui', now())"
                )
            return visible, str(refused.value)
        finally:
            await connection.close()

    execute(
        stack_settings,
        "INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at)"
        " VALUES ($1, $2, 0, 'analyst', 'ann', now())",
        (uuid.uuid4(), uuid.uuid4()),
    )
    visible, refusal = asyncio.run(attempt())

    assert visible == fetch(stack_settings, "SELECT count(*) AS n FROM current_labels")[0]["n"] > 0
    assert "permission denied for table fraud_labels" in refusal
