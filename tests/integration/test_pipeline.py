"""The whole pipeline on the real stack: CSV -> Kafka -> detector -> Kafka -> sink -> PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import numpy as np
import pandas as pd
import pytest
from confluent_kafka import Producer

from fraudstream.config import Settings
from fraudstream.contracts.schema import read_csv
from fraudstream.ml.model import FraudModel
from fraudstream.ml.offline import score_frame
from fraudstream.pipeline import kafka
from fraudstream.pipeline.producer import TransactionProducer
from tests.bad_files import BAD_FILES
from tests.helpers import count_rows, end_offsets, fetch_scores, wait_for, with_fresh_customers

pytestmark = pytest.mark.integration


def test_new_small_lands_in_postgres_with_the_scores_of_offline_scoring(
    stack_settings, services, new_small, tmp_path
):
    frame = with_fresh_customers(read_csv(new_small), "e2e")
    frame.to_csv(tmp_path / "fresh.csv", index=False)

    report = TransactionProducer(stack_settings).send(frame)
    wait_for(
        lambda: count_rows(stack_settings, report.transaction_ids) == 90, 60, "90 rows", *services.values()
    )
    offline = subprocess.run(
        [
            sys.executable,
            "-m",
            "fraudstream",
            "score",
            str(tmp_path / "fresh.csv"),
            "--out",
            str(tmp_path / "out.csv"),
        ],
        env=_env(stack_settings),
        capture_output=True,
        text=True,
    )

    assert offline.returncode == 0, offline.stderr
    stored = fetch_scores(stack_settings, report.transaction_ids).loc[report.transaction_ids]
    scored = pd.read_csv(tmp_path / "out.csv")
    assert np.array_equal(stored["score"].to_numpy(), scored["score"].to_numpy())
    assert np.array_equal(stored["fraud_flag"].to_numpy(), scored["fraud_flag"].to_numpy())
    explained = stored["score"] >= FraudModel.load(stack_settings.model_path).threshold  # explained from it
    assert all(len(json.loads(reasons)) == 3 for reasons in stored.loc[explained, "reasons"])
    assert stored.loc[~explained, "reasons"].isna().all()
    stored_inputs = pd.DataFrame([json.loads(row) for row in stored["transaction"]], columns=frame.columns)
    key = ["transaction_time", "name_2", "merch", "amount"]
    assert sorted(stored_inputs[key].itertuples(index=False)) == sorted(frame[key].itertuples(index=False))


def test_a_replayed_transaction_gives_one_row(stack_settings, services, new_small):
    frame = with_fresh_customers(read_csv(new_small).head(1), "replay")
    message = {"transaction_id": str(uuid.uuid4()), "data": frame.to_dict("records")[0]}
    producer = Producer(kafka.producer_config(stack_settings))
    for _ in range(2):
        producer.produce(stack_settings.topic_transactions, json.dumps(message).encode(), b"replay")
    producer.flush(10)

    wait_for(lambda: count_rows(stack_settings, [message["transaction_id"]]) == 1, 60, "the row")
    assert _scoring_messages_for(stack_settings, message["transaction_id"]) == 2
    assert count_rows(stack_settings, [message["transaction_id"]]) == 1


def test_a_replayed_score_in_the_seed_list_form_gives_one_row(stack_settings, services):
    transaction_id = str(uuid.uuid4())
    seed_form = json.dumps([{"score": 0.95, "fraud_flag": 1, "transaction_id": transaction_id}]).encode()
    producer = Producer(kafka.producer_config(stack_settings))
    producer.produce(stack_settings.topic_scoring, seed_form)
    producer.produce(stack_settings.topic_scoring, seed_form)
    producer.flush(10)

    wait_for(lambda: count_rows(stack_settings, [transaction_id]) == 1, 30, "the row")
    row = fetch_scores(stack_settings, [transaction_id]).iloc[0]
    assert (row["score"], row["fraud_flag"]) == (0.95, 1)


@pytest.mark.parametrize("name", BAD_FILES)
def test_send_refuses_a_bad_file_in_one_line_and_sends_nothing(stack_settings, tmp_path, name):
    content, words = BAD_FILES[name]
    bad = tmp_path / name
    bad.write_bytes(content)
    before = end_offsets(stack_settings, stack_settings.topic_transactions)

    result = subprocess.run(
        [sys.executable, "-m", "fraudstream", "send", str(bad)],
        capture_output=True,
        text=True,
        env=_env(stack_settings),
    )

    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {bad}: ") and result.stderr.count("\n") == 1, result.stderr
    assert all(word in result.stderr for word in words) and "Traceback" not in result.stderr
    assert result.stderr.rstrip().endswith("; nothing was sent")
    assert end_offsets(stack_settings, stack_settings.topic_transactions) == before


def test_status_reports_healthy_with_the_row_count_and_the_services(stack_settings, services):
    ports = {
        "FRAUDSTREAM_DETECTOR_METRICS_PORT": str(services["detector"].port),
        "FRAUDSTREAM_SINK_METRICS_PORT": str(services["sink"].port),
    }
    result = subprocess.run(
        [sys.executable, "-m", "fraudstream", "status", "--json"],
        capture_output=True,
        text=True,
        env={**_env(stack_settings), **ports},
    )
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stdout
    assert report["healthy"] is True
    assert report["fraud_scores_rows"] >= 90
    assert report["kafka"]["topics"]["transactions"]["partitions"] == 3
    assert report["kafka"]["consumer_lag"][stack_settings.detector_group]["topic"] == "transactions"
    detector = report["services"]["detector"]
    assert detector["ready"] is True and detector["assigned_partitions"] == [0, 1, 2]
    assert report["services"]["sink"]["ready"] is True


def test_status_exits_nonzero_when_postgres_is_unreachable(stack_settings):
    result = subprocess.run(
        [sys.executable, "-m", "fraudstream", "status", "--json"],
        capture_output=True,
        text=True,
        env={**_env(stack_settings), "FRAUDSTREAM_PG_PORT": "1"},
    )
    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert report["healthy"] is False and report["postgres"]["healthy"] is False
    assert report["kafka"]["healthy"] is True


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, **settings.environment()}


def _scoring_messages_for(settings: Settings, transaction_id: str) -> int:
    """Committed score messages carrying ``transaction_id`` (read_committed, from the beginning)."""
    messages = kafka.read_topic(settings, settings.topic_scoring, f"test-{uuid.uuid4()}", 60)
    return sum(transaction_id.encode() in message.value() for message in messages)


def test_history_survives_a_detector_kill(stack_settings, services, new_small):
    """A killed detector's successor restores the customers' history from the changelog: the scores
    are the ones an uninterrupted run gives."""
    frame = with_fresh_customers(read_csv(new_small), "restart")
    frame = frame.iloc[np.argsort(pd.to_datetime(frame["transaction_time"]).to_numpy(), kind="stable")]
    later = frame.assign(transaction_time="2021" + frame["transaction_time"].str[4:])  # after every original
    frame = pd.concat([frame, later])
    first, second = frame.iloc[: len(frame) // 2], frame.iloc[len(frame) // 2 :]
    producer = TransactionProducer(stack_settings)

    sent = producer.send(first).transaction_ids
    wait_for(lambda: count_rows(stack_settings, sent) == len(first), 60, "first half", *services.values())
    services["detector"].kill()
    services["detector"].start()
    sent += producer.send(second).transaction_ids
    wait_for(lambda: count_rows(stack_settings, sent) == len(frame), 60, "second half", *services.values())

    stored = fetch_scores(stack_settings, sent).loc[sent, "score"].to_numpy()
    offline = score_frame(frame.reset_index(drop=True), FraudModel.load(stack_settings.model_path), 0.5)
    assert np.array_equal(stored, offline["score"].to_numpy())


def test_services_export_prometheus_metrics(stack_settings, services, new_small):
    report = TransactionProducer(stack_settings).send(with_fresh_customers(read_csv(new_small), "metrics"))
    wait_for(
        lambda: count_rows(stack_settings, report.transaction_ids) == 90, 60, "90 rows", *services.values()
    )

    for name, service in services.items():
        metrics = service.metrics()
        consumed = re.search(rf'^fraudstream_messages_in_total{{service="{name}"}} (\S+)$', metrics, re.M)
        assert consumed is not None and float(consumed.group(1)) >= 90
        assert re.search(rf'^fraudstream_consumer_lag{{partition="\d",service="{name}"}} ', metrics, re.M)
        assert f'fraudstream_batch_seconds_count{{service="{name}"}}' in metrics
    assert 'fraudstream_model_info{service="detector",version="' in services["detector"].metrics()
