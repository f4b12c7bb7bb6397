"""The detector's routing decision: a message is scored where it is only if keyed by its customer on the
customer's murmur2 partition; the others are forwarded there, in send order, with their origin."""

from __future__ import annotations

import numpy as np
from confluent_kafka import Message

from fraudstream.contracts.batch_decode import DecodedBatch, decode_batch
from fraudstream.contracts.messages import TransactionData, encoder
from fraudstream.contracts.schema import INPUT_COLUMNS, customer_ids
from fraudstream.pipeline.detector.routing import (
    FORWARDED_OFFSET,
    FORWARDED_PARTITION,
    FORWARDED_TOPIC,
    Forward,
    Router,
    forward_order,
    forwarded_headers,
    in_place,
)
from fraudstream.pipeline.partitioner import partitions_for_keys
from tests.helpers import input_rows

PARTITIONS = 3


def record(partition: int, offset: int, timestamp: int = 0, key: bytes | None = None) -> Message:
    return Message(
        topic="t", partition=partition, offset=offset, key=key, value=b"{}", timestamp=(1, timestamp)
    )


def test_only_a_message_keyed_by_its_customer_on_its_murmur2_partition_is_in_place():
    customers = np.array(["0123456789abcdef"] * 4, dtype=object)
    home = int(partitions_for_keys([b"0123456789abcdef"], PARTITIONS)[0])
    other = (home + 1) % PARTITIONS
    keys = [b"0123456789abcdef", None, b"someone-else", b"0123456789abcdef"]
    partitions = np.array([home, home, home, other])
    here, homes = in_place(keys, partitions, customers, PARTITIONS)
    assert here.tolist() == [True, False, False, False]
    assert homes.tolist() == [home] * 4


def test_forwarded_messages_go_in_timestamp_order_each_partition_in_offset_order():
    stamps = {(0, 10): 5, (0, 11): 3, (1, 7): 4, (2, 1): 4, (1, 8): 9}  # partition 0's clock went back
    forwards = [Forward(record(p, o, stamps[p, o]), "c", 0) for p, o in stamps]
    order = [(f.record.partition(), f.record.offset()) for f in forward_order(forwards)]
    assert order == [(1, 7), (2, 1), (0, 10), (0, 11), (1, 8)]


def test_a_forwarded_copy_names_its_origin_and_keeps_its_headers():
    original = Message(topic="t", partition=2, offset=41, value=b"{}", headers=[("trace", b"x")])
    headers = forwarded_headers(original)
    assert headers == [
        ("trace", b"x"),
        (FORWARDED_TOPIC, b"t"),
        (FORWARDED_PARTITION, b"2"),
        (FORWARDED_OFFSET, b"41"),
    ]
    copy = Message(topic="t", partition=0, offset=3, value=b"{}", headers=headers)
    assert forwarded_headers(copy) == headers  # forwarded again: still its first origin


def decoded(count: int, seed: int) -> tuple[list[bytes], DecodedBatch, np.ndarray, np.ndarray]:
    """``count`` input messages, their decoded batch, each row's customer and its murmur2 partition."""
    values = [
        encoder.encode(
            {
                "transaction_id": f"00000000-0000-4000-8000-{n:012d}",
                "data": TransactionData(*(row[c] for c in INPUT_COLUMNS)),
            }
        )
        for n, row in enumerate(input_rows(count, seed))
    ]
    batch = decode_batch(values)
    customers = customer_ids(batch.columns)
    return values, batch, customers, partitions_for_keys([c.encode() for c in customers], PARTITIONS)


def test_the_router_scores_the_rows_in_place_and_forwards_the_others():
    values, batch, customers, homes = decoded(40, seed=3)
    # Even rows keyed and placed as our producers do; odd rows unkeyed on partition 0.
    records = [
        Message(
            topic="t",
            partition=int(homes[n]) if n % 2 == 0 else 0,
            offset=n,
            value=value,
            key=customers[n].encode() if n % 2 == 0 else None,
            timestamp=(1, 1000 + n),
        )
        for n, value in enumerate(values)
    ]
    routed = Router("t", PARTITIONS).route(batch, records, customers)
    assert [r.offset() for r in routed.records] == list(range(0, 40, 2))
    assert routed.batch.transaction_ids == batch.transaction_ids[::2]
    for name, values in batch.columns.items():
        assert np.array_equal(routed.batch.columns[name], values[::2])
    assert np.array_equal(routed.batch.times, batch.times[::2])
    assert routed.customers.tolist() == customers[::2].tolist()
    assert [(f.record.offset(), f.customer, f.partition) for f in routed.forwards] == [
        (n, customers[n], int(homes[n])) for n in range(1, 40, 2)
    ]


def test_keyed_input_in_place_is_passed_through_as_it_is():
    _, batch, customers, homes = decoded(10, seed=4)
    records = [record(int(homes[n]), n, key=customers[n].encode()) for n in range(10)]
    routed = Router("t", PARTITIONS).route(batch, records, customers)
    assert routed.batch is batch and routed.forwards == []
