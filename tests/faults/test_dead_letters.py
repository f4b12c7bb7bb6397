"""Bad input never crashes a service and never disappears: it lands in a dead-letter topic with a reason."""

from __future__ import annotations

import uuid

import orjson
import pytest
from confluent_kafka import Producer

from fraudstream.config import Settings
from fraudstream.infra.topics import ensure_topics
from fraudstream.ops.loadgen import transactions
from fraudstream.ops.supervisor import ServiceProcess
from fraudstream.pipeline import kafka
from tests.helpers import count_rows, pipeline_progress, read_all, running_pipeline, wait_for
from tests.message_corpus import labelled_corpus

pytestmark = [pytest.mark.integration, pytest.mark.fault]


def good_messages(count: int) -> list[dict]:
    rows = transactions(count, seed=21).to_dict("records")
    return [{"transaction_id": str(uuid.uuid4()), "data": row} for row in rows]


@pytest.fixture
def scoped(stack_settings: Settings) -> Settings:
    settings = stack_settings.scoped(f"dlq-{uuid.uuid4().hex[:6]}")
    ensure_topics(settings)
    return settings


def test_every_malformed_message_lands_in_the_dlq_and_every_good_one_is_scored(scoped):
    """The odd messages of the decoder's corpus, each between two good ones: exactly those the contract
    refuses (labelled by hand) are dead letters; the good ones and the odd but valid ones are scored."""
    labelled = labelled_corpus()  # once: a message of it has a fresh UUID per call
    odd = [value for value, _ in labelled]
    refused = [value for value, refuse in labelled if refuse]
    accepted = [value for value, refuse in labelled if not refuse]
    valid_ids = {str(uuid.UUID(orjson.loads(value)["transaction_id"])) for value in accepted}
    good = good_messages(len(odd) * 2)
    with running_pipeline(scoped, instance="dlq") as services:
        producer = Producer(kafka.producer_config(scoped))
        for index, value in enumerate(odd):
            for message in good[2 * index : 2 * index + 2]:
                producer.produce(scoped.topic_transactions, orjson.dumps(message), b"customer")
            producer.produce(scoped.topic_transactions, value, b"customer")
        producer.flush(10)

        ids = [message["transaction_id"] for message in good] + sorted(valid_ids)
        progress = pipeline_progress(scoped, ids)
        rows = lambda: count_rows(scoped, ids) == len(ids)  # noqa: E731
        wait_for(rows, 90, "the good rows", *services.values(), progress=progress)
        dead = read_all(scoped, scoped.dlq_transactions, len(refused))
        assert sorted((m["value"] or b"") for m in dead) == sorted((b or b"") for b in refused)
        assert all(m["headers"]["error"] and m["headers"]["source.topic"] for m in dead)
        assert all(service.process.poll() is None for service in services.values()), "a service died"


def test_malformed_score_messages_land_in_the_scoring_dlq(scoped):
    good_id = str(uuid.uuid4())
    bad = [b"not json", orjson.dumps({"score": 2.0, "fraud_flag": 1, "transaction_id": good_id}), b"[]"]
    sink = ServiceProcess("sink", scoped)
    sink.start()
    try:
        producer = Producer(kafka.producer_config(scoped))
        for value in bad:
            producer.produce(scoped.topic_scoring, value)
        producer.produce(
            scoped.topic_scoring, orjson.dumps({"score": 0.2, "fraud_flag": 0, "transaction_id": good_id})
        )
        producer.flush(10)

        wait_for(lambda: count_rows(scoped, [good_id]) == 1, 60, "the good row", sink)
        dead = read_all(scoped, scoped.dlq_scoring, len(bad))
        assert sorted(m["value"] for m in dead) == sorted(bad)
        assert all(m["headers"]["error"] for m in dead)
    finally:
        sink.stop()
