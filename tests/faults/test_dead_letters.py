"""Bad input never crashes a service and never disappears: it lands in a dead-letter topic with a reason."""

from __future__ import annotations

import math
import uuid

import orjson
import pytest
from confluent_kafka import Consumer, Producer

from fraudstream.config import Settings
from fraudstream.infra.topics import ensure_topics
from fraudstream.loadgen import transactions
from fraudstream.schema import INPUT_COLUMNS
from fraudstream.supervisor import ServiceProcess
from tests.helpers import count_rows, running_pipeline, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]


def good_messages(count: int) -> list[dict]:
    rows = transactions(count, seed=21).to_dict("records")
    return [{"transaction_id": str(uuid.uuid4()), "data": row} for row in rows]


def malformed_corpus() -> list[bytes | None]:
    """More than fifty ways a transaction message can be wrong."""
    base = good_messages(1)[0]

    def with_data(**changes: object) -> bytes:
        return orjson.dumps({**base, "data": {**base["data"], **changes}})

    missing_fields = [
        orjson.dumps({**base, "data": {k: v for k, v in base["data"].items() if k != column}})
        for column in INPUT_COLUMNS
    ]
    not_json = [b"", b"{", b"null", b"[]", b"123", b'"text"', b"\xff\xfe\x00", b"{'single': 'quotes'}", None]
    wrong_shape = [
        orjson.dumps({"data": base["data"]}),
        orjson.dumps({"transaction_id": base["transaction_id"]}),
        orjson.dumps({**base, "data": None}),
        orjson.dumps({**base, "data": list(base["data"].values())}),
        orjson.dumps({**base, "transaction_id": 12345}),
        orjson.dumps({**base, "transaction_id": "not-a-uuid"}),
        orjson.dumps({**base, "transaction_id": "550e8400-e29b-41d4-a716"}),
    ]
    wrong_types = [
        with_data(amount="12.50"),
        with_data(amount=None),
        with_data(post_code="76443-x"),
        with_data(post_code=1.5),
        with_data(lat="north"),
        with_data(population_city=[1]),
        with_data(merch={"name": "x"}),
        with_data(transaction_time=20190101),
        with_data(cat_id=""),
    ]
    bad_values = [
        with_data(transaction_time="yesterday"),
        with_data(transaction_time="2019-13-45 25:61"),
        with_data(transaction_time="2019-02-30 10:00"),
        with_data(amount=-1.0),
        with_data(amount=1e308),
        with_data(lat=91.0),
        with_data(lat=-90.5),
        with_data(lon=200.0),
        with_data(merchant_lat=1000.0),
        with_data(merchant_lon=-181.0),
        with_data(population_city=-5),
        orjson.dumps(base).replace(str(base["data"]["amount"]).encode(), b"NaN", 1),
        orjson.dumps(base).replace(str(base["data"]["amount"]).encode(), b"Infinity", 1),
        with_data(jobs="x" * 100_000),
    ]
    corpus = missing_fields + not_json + wrong_shape + wrong_types + bad_values
    assert not math.isnan(base["data"]["amount"])
    return corpus


@pytest.fixture
def scoped(stack_settings: Settings) -> Settings:
    settings = stack_settings.scoped(f"dlq-{uuid.uuid4().hex[:6]}")
    ensure_topics(settings)
    return settings


def test_every_malformed_message_lands_in_the_dlq_and_every_good_one_is_scored(scoped):
    corpus = malformed_corpus()
    good = good_messages(len(corpus) * 2)
    assert len(corpus) >= 50
    with running_pipeline(scoped, instance="dlq") as services:
        producer = Producer({"bootstrap.servers": scoped.kafka_bootstrap_servers})
        for index, bad in enumerate(corpus):
            for message in good[2 * index : 2 * index + 2]:
                producer.produce(scoped.topic_transactions, orjson.dumps(message), b"customer")
            producer.produce(scoped.topic_transactions, bad, b"customer")
        producer.flush(10)

        ids = [message["transaction_id"] for message in good]
        wait_for(lambda: count_rows(scoped, ids) == len(ids), 90, "the good rows", *services.values())
        dead = read_all(scoped, scoped.dlq_transactions, len(corpus))
        assert sorted((m["value"] or b"") for m in dead) == sorted((b or b"") for b in corpus)
        assert all(m["headers"]["error"] and m["headers"]["source.topic"] for m in dead)
        assert all(service.process.poll() is None for service in services.values()), "a service died"


def test_malformed_score_messages_land_in_the_scoring_dlq(scoped):
    good_id = str(uuid.uuid4())
    bad = [b"not json", orjson.dumps({"score": 2.0, "fraud_flag": 1, "transaction_id": good_id}), b"[]"]
    sink = ServiceProcess("sink", scoped)
    sink.start()
    try:
        producer = Producer({"bootstrap.servers": scoped.kafka_bootstrap_servers})
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


def read_all(settings: Settings, topic: str, expected: int) -> list[dict]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"audit-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    found: list[dict] = []
    try:
        wait_for(lambda: _collect(consumer, found) >= expected, 60, f"{expected} messages in {topic}")
    finally:
        consumer.close()
    return found


def _collect(consumer: Consumer, found: list[dict]) -> int:
    for message in consumer.consume(1000, 1):
        if not message.error():
            found.append({"value": message.value(), "headers": dict(message.headers() or [])})
    return len(found)
