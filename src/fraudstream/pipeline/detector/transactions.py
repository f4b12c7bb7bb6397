"""The detector's Kafka transactions: begin, produce batches, send their offsets, commit.

Exactly-once from ``transactions`` to ``scoring`` rests on this sequence: the batches' score messages,
dead letters, the changed customers' state and the consumer offsets are one transaction, so
``read_committed`` readers see all of them or none. A failure at any step aborts the transaction and
is raised; the detector then starts over with fresh clients from the committed offsets. The commit is
left running while the next batch is scored (the CPU work overlaps the broker's round trips); it is
awaited before the next transaction begins and before the partitions are given up in a rebalance.

With a commit interval (``interval_s``, Kafka Streams' ``commit.interval.ms`` under exactly-once), a
transaction stays open for the batches that come within that time of its first one, and is committed
with the offsets of its last batches: fewer transactions (each one costs the broker requests and
markers on every partition it touches), each row visible up to the interval later. With no interval,
every batch is a transaction. An idle detector (``settle``) commits the open transaction at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from confluent_kafka import Producer, TopicPartition

from fraudstream.errors import KafkaCallTimeout
from fraudstream.logs import fields

logger = logging.getLogger(__name__)

B = TypeVar("B")


@dataclass(frozen=True)
class Timeouts:
    """Seconds each transactional call may take, and how long after that it is given up on."""

    init_s: float = 30.0
    call_s: float = 15.0  # the producer's transaction.timeout.ms
    abort_s: float = 10.0
    grace_s: float = 5.0


@dataclass(frozen=True)
class InFlight(Generic[B]):
    """A transaction whose commit is running: its batches, and the commit call on its own thread."""

    batches: list[B]
    commit: Blocking


@dataclass
class Open(Generic[B]):
    """The transaction being filled: when it began, its batches, the next offset of each partition."""

    began: float
    batches: list[B] = field(default_factory=list)
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    group: object = None

    def add(self, batch: B, offsets: Sequence[TopicPartition], group: object) -> None:
        self.batches.append(batch)
        self.offsets.update({(tp.topic, tp.partition): tp.offset for tp in offsets})
        self.group = group

    def topic_partitions(self) -> list[TopicPartition]:
        return [
            TopicPartition(topic, partition, offset) for (topic, partition), offset in self.offsets.items()
        ]


class Transactions(Generic[B]):
    """The transactions of one transactional producer, at most one of them committing at a time.

    ``produce(producer, batch)`` writes a batch's messages inside the open transaction;
    ``on_commit(batch)`` is called, batch by batch, once their transaction has committed.
    """

    def __init__(
        self,
        producer: Producer,
        produce: Callable[[Producer, B], None],
        on_commit: Callable[[B], None],
        timeouts: Timeouts = Timeouts(),
        interval_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        producer.init_transactions(timeouts.init_s)  # fences any earlier producer of this transactional.id
        self._producer = producer
        self._produce = produce
        self._on_commit = on_commit
        self._timeouts = timeouts
        self._interval_s = interval_s
        self._clock = clock
        self._open: Open[B] | None = None
        self._in_flight: InFlight[B] | None = None

    def publish(self, batch: B, offsets: Sequence[TopicPartition], group: object) -> None:
        """The batch's messages in the open transaction (begun, after the previous commit, if none is
        open), then the consumer ``offsets`` of ``group`` recorded; once the transaction has been open
        for the interval, the offsets are sent and its commit is left running."""
        if self._open is None:
            self.settle()
            self._producer.begin_transaction()
            self._open = Open(self._clock())
        try:
            self._produce(self._producer, batch)
        except Exception:
            self._open = None
            self._abort()
            raise
        self._open.add(batch, offsets, group)
        if self._clock() - self._open.began >= self._interval_s:
            self._commit_open()

    def settle(self) -> None:
        """Commit the open transaction, if any, and wait for the commit left running, if any; a failed
        one is aborted and raised."""
        if self._open is not None:
            self._commit_open()
        if self._in_flight is None:
            return
        in_flight, self._in_flight = self._in_flight, None
        try:
            in_flight.commit.wait()
        except Exception:
            self._abort()
            raise
        for batch in in_flight.batches:
            self._on_commit(batch)

    def _commit_open(self) -> None:
        """Send the open transaction's offsets and leave its commit running."""
        transaction, self._open = self._open, None
        producer = self._producer
        try:
            send = producer.send_offsets_to_transaction
            self._call(
                "send_offsets_to_transaction", send, transaction.topic_partitions(), transaction.group
            ).wait()
        except Exception:
            self._abort()
            raise
        commit = self._call("commit_transaction", producer.commit_transaction)
        self._in_flight = InFlight(transaction.batches, commit)

    def _call(self, what: str, call: Callable[..., object], *args: object) -> Blocking:
        return Blocking(self._timeouts.call_s, self._timeouts.grace_s, what, call, *args)

    def _abort(self) -> None:
        abort = self._producer.abort_transaction
        try:
            Blocking(self._timeouts.abort_s, self._timeouts.grace_s, "abort_transaction", abort).wait()
        except Exception as error:
            logger.warning("abort failed", extra=fields(error=str(error)))


class Blocking:
    """``call(*args, seconds)`` on a thread of its own, given up on if it blocks ``grace_s`` past its
    own timeout.

    librdkafka can block in a transactional call past its timeout when the group coordinator
    goes away (librdkafka issues 5456 and 5511): the call is left behind on its thread, and the
    raised ``KafkaCallTimeout`` makes the detector start over with fresh clients, whose
    init_transactions fences it. The caller may work meanwhile and ``wait`` later: the detector
    scores the next batch while the previous one commits.
    """

    def __init__(
        self, seconds: float, grace_s: float, what: str, call: Callable[..., object], *args: object
    ) -> None:
        self._seconds, self._grace_s, self._what = seconds, grace_s, what
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call, *args), name=what, daemon=True)
        self._thread.start()

    def _run(self, call: Callable[..., object], *args: object) -> None:
        try:
            call(*args, self._seconds)
        except BaseException as error:
            self._error = error

    def wait(self) -> None:
        """Return when the call has returned; raise its error, or ``KafkaCallTimeout`` if it still blocks."""
        self._thread.join(self._seconds + self._grace_s)
        if self._thread.is_alive():
            raise KafkaCallTimeout(f"{self._what} blocked for {self._seconds + self._grace_s:g} s")
        if self._error is not None:
            raise self._error
