"""Where a transaction is scored: by the owner of its customer's partition, whatever its producer did.

A detector's feature state is partitioned like ``transactions`` under the assumption that each message
is keyed by its customer (``schema.customer_ids``) and partitioned by Kafka's murmur2 partitioner. A
message that is both is *in place* and scored where it is. Any other message (no key, another key, or
another partitioner, such as librdkafka's default CRC32) would be scored against part of its
customer's history, so it is *forwarded*: produced again to ``transactions``, keyed by its customer, to
the partition murmur2 gives, with headers naming its origin, inside the transaction that commits the
batch's input offsets (exactly once: the copy and the consumed offset commit together). The copy is in
place by construction, and the detector owning that partition scores it when it reads it.

Forwarding into ``transactions`` itself rather than an internal topic: the copy must reach the member
that owns the customer's state, and the group's assignor (cooperative-sticky) gives no guarantee that
partition k of two subscribed topics goes to the same member. Keyed input pays only the check.

A batch's forwarded messages go out in the order of their Kafka timestamps (then partition), each
partition's messages kept in offset order, so one producer's send order is kept as far as a batch
shows it.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np
from confluent_kafka import Message, Producer

from fraudstream.contracts.batch_decode import DecodedBatch
from fraudstream.pipeline.partitioner import partitions_for_keys

FORWARDED_TOPIC = "forwarded.topic"
FORWARDED_PARTITION = "forwarded.partition"
FORWARDED_OFFSET = "forwarded.offset"


@dataclass(frozen=True)
class Forward:
    """A message to produce again, keyed by ``customer``, to ``partition``."""

    record: Message
    customer: str
    partition: int


@dataclass(frozen=True)
class Routed:
    """A batch's rows split into those scored here (``batch``, their ``records`` and ``customers``)
    and those forwarded, in the order they are to be produced."""

    batch: DecodedBatch
    records: list[Message]
    customers: np.ndarray
    forwards: list[Forward]


def in_place(
    keys: Sequence[bytes | None], partitions: np.ndarray, customers: np.ndarray, partition_count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Whether each message is keyed by its customer on the customer's murmur2 partition; and that
    partition."""
    encoded = [customer.encode() for customer in customers]
    homes = partitions_for_keys(encoded, partition_count)
    keyed = np.fromiter((key == customer for key, customer in zip(keys, encoded, strict=True)), bool)
    return keyed & (homes == partitions), homes


def forward_order(forwards: list[Forward]) -> list[Forward]:
    """``forwards`` merged by Kafka timestamp (then partition), each partition's in the order given."""
    runs = [list(run) for _, run in groupby(sorted(forwards, key=_partition), key=_partition)]
    return list(heapq.merge(*runs, key=_send_order))


def _partition(forward: Forward) -> int:
    return forward.record.partition()


def _send_order(forward: Forward) -> tuple[int, int]:
    return forward.record.timestamp()[1], forward.record.partition()


def forwarded_headers(record: Message) -> list[tuple[str, bytes]]:
    """The record's headers and where it came from (a copy forwarded again keeps its first origin)."""
    headers = list(record.headers() or [])
    if any(name == FORWARDED_TOPIC for name, _ in headers):
        return headers
    return [
        *headers,
        (FORWARDED_TOPIC, record.topic().encode()),
        (FORWARDED_PARTITION, str(record.partition()).encode()),
        (FORWARDED_OFFSET, str(record.offset()).encode()),
    ]


class Router:
    """Routes the batches of one topic of ``partition_count`` partitions."""

    def __init__(self, topic: str, partition_count: int) -> None:
        self.topic = topic
        self.partition_count = partition_count

    def route(self, batch: DecodedBatch, records: list[Message], customers: np.ndarray) -> Routed:
        """Split a decoded batch (``records[i]`` is the record of the batch's row i)."""
        keys = [record.key() for record in records]
        partitions = np.fromiter((r.partition() for r in records), dtype=np.int64, count=len(records))
        here, homes = in_place(keys, partitions, customers, self.partition_count)
        if here.all():
            return Routed(batch, records, customers, [])
        kept, moved = np.flatnonzero(here), np.flatnonzero(~here).tolist()
        forwards = [Forward(records[row], customers[row], int(homes[row])) for row in moved]
        scored = [records[row] for row in kept.tolist()]
        return Routed(batch.select(kept), scored, customers[kept], forward_order(forwards))

    def forward(self, producer: Producer, forwards: list[Forward]) -> None:
        """Produce the forwarded messages (inside the caller's transaction), keeping their timestamps:
        a score's ``produced_at`` stays its original send time."""
        for forward in forwards:
            record = forward.record
            producer.produce(
                self.topic,
                record.value(),
                forward.customer.encode(),
                partition=forward.partition,
                timestamp=max(record.timestamp()[1], 0),
                headers=forwarded_headers(record),
            )
