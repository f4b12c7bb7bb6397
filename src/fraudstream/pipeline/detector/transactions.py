"""The detector's Kafka transaction per batch: begin, produce, send the offsets, commit.

Exactly-once from ``transactions`` to ``scoring`` rests on this sequence: a batch's score messages,
its dead letters, the changed customers' state and the consumer offsets are one transaction, so
``read_committed`` readers see all of them or none. A failure at any step aborts the transaction and
is raised; the detector then starts over with fresh clients from the committed offsets. The commit is
left running while the next batch is scored (the CPU work overlaps the broker's round trips); it is
awaited before the next transaction begins and before the partitions are given up in a rebalance.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
    """A transaction whose commit is running: its batch, and the commit call on its own thread."""

    batch: B
    commit: Blocking


class Transactions(Generic[B]):
    """The transactions of one transactional producer, at most one of them committing at a time.

    ``produce(producer, batch)`` writes a batch's messages inside its transaction; ``on_commit(batch)``
    is called once that transaction has committed.
    """

    def __init__(
        self,
        producer: Producer,
        produce: Callable[[Producer, B], None],
        on_commit: Callable[[B], None],
        timeouts: Timeouts = Timeouts(),
    ) -> None:
        producer.init_transactions(timeouts.init_s)  # fences any earlier producer of this transactional.id
        self._producer = producer
        self._produce = produce
        self._on_commit = on_commit
        self._timeouts = timeouts
        self._in_flight: InFlight[B] | None = None

    def publish(self, batch: B, offsets: Sequence[TopicPartition], group: Callable[[], object]) -> None:
        """One transaction: the batch's messages, then the consumer ``offsets`` with the consumer's group
        metadata (``group()``); its commit is left running. Waits for the previous commit first.

        The metadata is read just before the offsets are sent: it names the group's generation, which a
        cooperative rebalance may bump while the consumer goes on consuming, and a stale one makes the
        broker refuse the offsets (ILLEGAL_GENERATION)."""
        self.settle()
        producer = self._producer
        producer.begin_transaction()
        try:
            self._produce(producer, batch)
            send = producer.send_offsets_to_transaction
            self._call("send_offsets_to_transaction", send, offsets, group()).wait()
        except Exception:
            self._abort()
            raise
        self._in_flight = InFlight(batch, self._call("commit_transaction", producer.commit_transaction))

    def settle(self) -> None:
        """Wait for the commit left running by ``publish``, if any; a failed one is aborted and raised."""
        if self._in_flight is None:
            return
        in_flight, self._in_flight = self._in_flight, None
        try:
            in_flight.commit.wait()
        except Exception:
            self._abort()
            raise
        self._on_commit(in_flight.batch)

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
