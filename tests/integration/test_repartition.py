"""Scores independent of how producers key their messages, and rebalances that move only what moves.

Two detectors share the partitions of ``transactions``. Input from a producer that sends no key (as
the seed's kafka-python producer does), or keys by customer with librdkafka's CRC32 partitioner, is
forwarded to its customer's murmur2 partition and scored there: every score in ``scoring`` equals the
offline score of the same rows, bit for bit, exactly once, with nothing dead-lettered.

Order: an unkeyed producer spreads one customer's transactions over all partitions, and two of them in
flight at once on different partitions have no defined order (the README's "Messages"). The unkeyed
test sends each customer's k-th transactions in wave k, once wave k-1 is scored: every message is
still spread and forwarded, and each customer's order is the one offline scoring uses.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator

import numpy as np
import orjson
import pandas as pd
import pytest
from confluent_kafka import Message, Producer
from confluent_kafka.admin import NewTopic

from fraudstream.config import Settings
from fraudstream.contracts.messages import TransactionData, encoder
from fraudstream.contracts.schema import INPUT_COLUMNS, customer_ids, read_csv, transaction_times
from fraudstream.infra.topics import ensure_topics
from fraudstream.ml.model import FraudModel
from fraudstream.ml.offline import score_frame
from fraudstream.ops.loadgen import transactions
from fraudstream.ops.supervisor import ServiceProcess
from fraudstream.pipeline import kafka
from fraudstream.pipeline.detector.routing import FORWARDED_PARTITION, FORWARDED_TOPIC
from fraudstream.pipeline.partitioner import partitions_for_keys
from fraudstream.pipeline.producer import TransactionProducer
from tests.conftest import shared_file
from tests.helpers import running, wait_for, with_fresh_customers

pytestmark = pytest.mark.integration

ROWS = 3000


@pytest.fixture(scope="module")
def later_rows() -> pd.DataFrame:
    """The latest ROWS transactions of the training data, in time order."""
    frame = read_csv(shared_file("data", "train.csv.gz")).drop(columns="target")
    order = np.argsort(transaction_times(frame), kind="stable")
    return frame.iloc[order[-ROWS:]].reset_index(drop=True)


def scoped(stack_settings: Settings, name: str) -> Settings:
    settings = stack_settings.scoped(f"{name}-{uuid.uuid4().hex[:6]}")
    ensure_topics(settings)
    return settings


def detector(settings: Settings, instance: str) -> ServiceProcess:
    return ServiceProcess("detector", settings, "--instance", instance)


@pytest.fixture(scope="module")
def two_detectors(stack_settings: Settings) -> Iterator[tuple[Settings, list[ServiceProcess]]]:
    """Two detectors in one group, each holding some of the partitions."""
    settings = scoped(stack_settings, "repartition")
    services = {name: detector(settings, name) for name in ("a", "b")}
    with running(services):
        wait_for(
            lambda: all(assigned(s) for s in services.values()), 60, "partitions for both", *services.values()
        )
        yield settings, list(services.values())


def assigned(service: ServiceProcess) -> list[int]:
    return service.health().get("assigned_partitions") or []


def encode(frame: pd.DataFrame) -> tuple[list[str], list[bytes]]:
    """The rows as transaction messages (fresh ids), in the format of ``TransactionProducer``."""
    ids = [str(uuid.uuid4()) for _ in range(len(frame))]
    rows = zip(*(frame[name].tolist() for name in INPUT_COLUMNS), strict=True)
    values = [
        encoder.encode({"transaction_id": i, "data": TransactionData(*row)})
        for i, row in zip(ids, rows, strict=True)
    ]
    return ids, values


def send(settings: Settings, values: list[bytes], keys: list[bytes] | None, **config: object) -> None:
    producer = Producer({**kafka.client_config(settings), "linger.ms": 0, **config})
    for n, value in enumerate(values):
        producer.produce(settings.topic_transactions, value, None if keys is None else keys[n])
        producer.poll(0)
    assert producer.flush(30) == 0


def committed(settings: Settings, topic: str) -> list[Message]:
    return kafka.read_topic(settings, topic, f"audit-{uuid.uuid4()}", 60)


def scores_of(settings: Settings, ids: list[str]) -> Counter[str]:
    """Committed score messages per transaction id of ``ids``."""
    wanted = set(ids)
    found = (orjson.loads(m.value()) for m in committed(settings, settings.topic_scoring))
    return Counter(score["transaction_id"] for score in found if score["transaction_id"] in wanted)


def wait_scored(settings: Settings, ids: list[str], services: list[ServiceProcess]) -> None:
    wait_for(lambda: len(scores_of(settings, ids)) == len(ids), 90, f"{len(ids)} scores", *services)


def assert_scored_as_offline(settings: Settings, frame: pd.DataFrame, ids: list[str]) -> None:
    """Each of ``ids`` (the rows of ``frame``) scored once, as offline scoring of ``frame`` scores it."""
    counts = scores_of(settings, ids)
    assert set(counts.values()) == {1} and len(counts) == len(ids)
    messages = {
        s["transaction_id"]: s
        for s in map(orjson.loads, (m.value() for m in committed(settings, settings.topic_scoring)))
    }
    offline = score_frame(frame, FraudModel.load(settings.model_path))
    streamed = [messages[i] for i in ids]
    assert [s["score"] for s in streamed] == offline["score"].tolist()
    assert [s["fraud_flag"] for s in streamed] == offline["fraud_flag"].tolist()
    assert committed(settings, settings.dlq_transactions) == []


def forwarded_copies(settings: Settings, ids: list[str]) -> list[Message]:
    wanted = set(ids)
    return [
        m
        for m in committed(settings, settings.topic_transactions)
        if FORWARDED_TOPIC in dict(m.headers() or []) and orjson.loads(m.value())["transaction_id"] in wanted
    ]


def assert_copies_on_their_customers_partition(
    copies: list[Message], frame: pd.DataFrame, ids: list[str]
) -> None:
    customer_of = dict(zip(ids, customer_ids(frame), strict=True))
    for copy in copies:
        customer = customer_of[orjson.loads(copy.value())["transaction_id"]]
        assert copy.key() == customer.encode()
        assert copy.partition() == int(partitions_for_keys([copy.key()], 3)[0])


def test_unkeyed_input_spread_over_partitions_scores_as_offline(two_detectors, later_rows):
    settings, services = two_detectors
    frame = with_fresh_customers(later_rows, "unkeyed")
    ids, values = encode(frame)
    wave = frame.groupby(customer_ids(frame)).cumcount().to_numpy()
    for k in range(wave.max() + 1):
        rows = np.flatnonzero(wave == k).tolist()
        send(
            settings,
            [values[r] for r in rows],
            None,
            partitioner="random",
            **{"sticky.partitioning.linger.ms": 0},
        )
        wait_scored(settings, [ids[r] for r in rows], services)

    copies = forwarded_copies(settings, ids)
    assert len(copies) == ROWS  # no key: every message forwarded, once
    assert len({dict(c.headers())[FORWARDED_PARTITION] for c in copies}) == 3  # sent to every partition
    assert_copies_on_their_customers_partition(copies, frame, ids)
    assert_scored_as_offline(settings, frame, ids)


def test_input_keyed_by_customer_with_crc32_partitioning_scores_as_offline(two_detectors, later_rows):
    settings, services = two_detectors
    frame = with_fresh_customers(later_rows, "crc32")
    ids, values = encode(frame)
    keys = [customer.encode() for customer in customer_ids(frame)]
    send(settings, values, keys, partitioner="consistent")  # librdkafka's CRC32 partitioner
    wait_scored(settings, ids, services)

    copies = forwarded_copies(settings, ids)
    crc32 = {m.partition() for m in committed(settings, settings.topic_transactions) if m.key() in set(keys)}
    assert 0 < len(copies) < ROWS and crc32 == {0, 1, 2}  # some customers' CRC32 partition is murmur2's
    assert_copies_on_their_customers_partition(copies, frame, ids)
    assert_scored_as_offline(settings, frame, ids)


def test_murmur2_gives_the_partitions_our_murmur2_random_producer_puts_keys_in(stack_settings):
    topic = f"murmur2-{uuid.uuid4().hex[:6]}"
    admin = kafka.admin(stack_settings)
    admin.create_topics([NewTopic(topic, num_partitions=7, replication_factor=1)])[topic].result()
    keys = [c.encode() for c in customer_ids(transactions(500, customer_count=500))]
    keys += [f"key-{n}".encode() * (n % 5) for n in range(1, 200)]  # every tail length, and longer keys
    placed: dict[bytes, int] = {}
    producer = Producer(kafka.producer_config(stack_settings))
    for key in keys:
        producer.produce(topic, b"", key, on_delivery=lambda _, m: placed.__setitem__(m.key(), m.partition()))
    assert producer.flush(30) == 0
    admin.delete_topics([topic])

    assert [placed[key] for key in keys] == partitions_for_keys(keys, 7).tolist()


def events(log: str, name: str) -> list[dict]:
    """The events called ``name`` of a service's output ``log``."""
    lines = (orjson.loads(line) for line in log.splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("event") == name]


def test_a_second_detector_takes_partitions_without_the_first_restoring_the_ones_it_keeps(
    stack_settings, later_rows
):
    settings = scoped(stack_settings, "scale-up")
    frame = with_fresh_customers(later_rows, "scale-up")
    first, second = detector(settings, "first"), detector(settings, "second")
    producer = TransactionProducer(settings)
    half = ROWS // 2
    with running({"first": first}):
        sent = producer.send(frame.iloc[:half]).transaction_ids
        wait_scored(settings, sent, [first])
        with running({"second": second}):
            wait_for(lambda: assigned(second) != [], 60, "partitions for the second", first, second)
            sent += producer.send(frame.iloc[half:]).transaction_ids
            wait_scored(settings, sent, [first, second])
            kept, taken = assigned(first), assigned(second)
            logs = first.output.read_text(), second.output.read_text()  # before the second leaves

    assert sorted(kept + taken) == [0, 1, 2] and kept and taken
    gains = [e["partitions"] for e in events(logs[0], "partitions assigned") if e["partitions"]]
    assert gains == [[0, 1, 2]]  # the partitions it keeps are never restored again
    assert [e["partitions"] for e in events(logs[0], "partitions revoked")] == [taken]
    assert events(logs[0], "first batch after rebalance")  # the pause it saw, logged (once per round)
    assert [e["partitions"] for e in events(logs[1], "partitions assigned") if e["partitions"]] == [taken]
    assert sum(e["customers_restored"] for e in events(logs[1], "partitions assigned")) > 0
    assert_scored_as_offline(settings, frame, sent)
