"""The detector's transaction sequence, against a recording test double of the transactional producer.

The real-Kafka fault tests (tests/faults) check the same sequence end to end; these check each step's
order and failure handling in milliseconds.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from fraudstream.config import DEFAULT_MODEL_PATH, Settings
from fraudstream.contracts.batch_decode import decode_batch
from fraudstream.contracts.schema import customer_ids
from fraudstream.errors import KafkaCallTimeout
from fraudstream.ml.features import FeatureEngine
from fraudstream.ml.model import FraudModel
from fraudstream.pipeline.detector import Detector
from fraudstream.pipeline.detector.loop import Prepared, Scored
from fraudstream.pipeline.detector.routing import Router
from fraudstream.pipeline.detector.serving import ModelServing
from fraudstream.pipeline.detector.transactions import Timeouts, Transactions
from tests.unit.transactions import synthetic

FAST = Timeouts(init_s=0.01, call_s=0.01, abort_s=0.01, grace_s=0.05)  # blocked calls given up on at once
PATIENT = Timeouts(init_s=0.01, call_s=0.01, abort_s=0.01, grace_s=5.0)  # for calls released by the test
OFFSETS = [TopicPartition("transactions", 0, 42)]
GROUP = object()


def group() -> object:
    return GROUP


STEPS = ("begin_transaction", "produce", "send_offsets_to_transaction", "commit_transaction")


class RecordingProducer:
    """Records the transactional calls made on it, in order; fails, or blocks until released, at a step."""

    def __init__(
        self,
        fail_at: str | None = None,
        block_at: str | None = None,
        code: int = KafkaError._STATE,
        fails: int | None = None,  # None: every time
    ) -> None:
        self.calls: list[str] = []
        self.fail_at, self.block_at, self.code, self.fails = fail_at, block_at, code, fails
        self.release = threading.Event()

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if name == self.block_at:
            self.release.wait(5)
        if name == self.fail_at and self.fails != 0:
            self.fails = None if self.fails is None else self.fails - 1
            raise KafkaException(KafkaError(self.code, f"{name} failed"))

    def init_transactions(self, timeout: float) -> None:
        self._step("init_transactions")

    def begin_transaction(self) -> None:
        self._step("begin_transaction")

    def produce(self, topic: str, value: bytes, key: bytes | None = None, **kwargs: object) -> None:
        self._step("produce")

    def send_offsets_to_transaction(
        self, offsets: list[TopicPartition], group: object, timeout: float
    ) -> None:
        assert offsets == OFFSETS
        assert group is GROUP
        self._step("send_offsets_to_transaction")

    def commit_transaction(self, timeout: float) -> None:
        self._step("commit_transaction")

    def abort_transaction(self, timeout: float) -> None:
        self._step("abort_transaction")


def transactions(producer: RecordingProducer, timeouts: Timeouts = FAST) -> Transactions[str]:
    """Batches are names, each produced as one message; a commit is recorded as ``committed <name>``."""

    def produce(target: RecordingProducer, batch: str) -> None:
        target.produce("scoring", batch.encode())

    return Transactions(
        producer, produce, lambda batch: producer.calls.append(f"committed {batch}"), timeouts
    )


def test_a_batch_is_begun_produced_given_its_offsets_and_committed_in_that_order():
    producer = RecordingProducer()
    sequence = transactions(producer)
    sequence.publish("a", OFFSETS, group)
    sequence.settle()
    assert producer.calls == ["init_transactions", *STEPS, "committed a"]


def test_the_commit_is_left_running_and_awaited_before_the_next_transaction_begins():
    producer = RecordingProducer(block_at="commit_transaction")
    sequence = transactions(producer, PATIENT)
    sequence.publish("a", OFFSETS, group)
    assert producer.calls[-1] == "commit_transaction"  # publish returned with the commit still blocked

    second = threading.Thread(target=sequence.publish, args=("b", OFFSETS, group))
    second.start()
    time.sleep(0.05)
    assert producer.calls.count("begin_transaction") == 1, "b began before a's commit returned"
    producer.release.set()
    second.join(5)
    sequence.settle()
    assert producer.calls == ["init_transactions", *STEPS, "committed a", *STEPS, "committed b"]


def test_settle_waits_for_the_commit_in_flight():
    producer = RecordingProducer(block_at="commit_transaction")
    sequence = transactions(producer, PATIENT)
    sequence.publish("a", OFFSETS, group)
    threading.Timer(0.05, producer.release.set).start()
    started = time.perf_counter()
    sequence.settle()
    assert time.perf_counter() - started >= 0.04
    assert producer.calls[-1] == "committed a"
    sequence.settle()  # nothing in flight any more: returns at once, commits nothing twice
    assert producer.calls.count("committed a") == 1


@pytest.mark.parametrize("step", ["produce", "send_offsets_to_transaction"])
def test_a_failure_before_the_commit_aborts_and_is_raised(step):
    producer = RecordingProducer(fail_at=step)
    sequence = transactions(producer)
    with pytest.raises(KafkaException, match=f"{step} failed"):
        sequence.publish("a", OFFSETS, group)
    done = STEPS.index(step) + 1
    assert producer.calls == ["init_transactions", *STEPS[:done], "abort_transaction"]
    sequence.settle()  # nothing was left in flight
    assert "commit_transaction" not in producer.calls


def test_a_failed_commit_is_aborted_and_raised_when_settled_and_the_batch_not_counted():
    producer = RecordingProducer(fail_at="commit_transaction")
    sequence = transactions(producer)
    sequence.publish("a", OFFSETS, group)
    with pytest.raises(KafkaException, match="commit_transaction failed"):
        sequence.settle()
    assert producer.calls == ["init_transactions", *STEPS, "abort_transaction"]


def test_a_failed_begin_is_raised_with_nothing_produced_and_nothing_to_abort():
    producer = RecordingProducer(fail_at="begin_transaction")
    with pytest.raises(KafkaException, match="begin_transaction failed"):
        transactions(producer).publish("a", OFFSETS, group)
    assert producer.calls == ["init_transactions", "begin_transaction"]


def test_an_error_of_the_batch_itself_aborts_the_transaction_too():
    producer = RecordingProducer()

    def produce(target: RecordingProducer, batch: str) -> None:
        raise KeyError(batch)

    with pytest.raises(KeyError):
        Transactions(producer, produce, lambda batch: None, FAST).publish("a", OFFSETS, group)
    assert producer.calls == ["init_transactions", "begin_transaction", "abort_transaction"]


@pytest.mark.parametrize("step", ["send_offsets_to_transaction", "commit_transaction"])
def test_a_call_blocked_past_its_timeout_is_given_up_on_and_the_transaction_aborted(step):
    producer = RecordingProducer(block_at=step)
    sequence = transactions(producer)
    started = time.perf_counter()
    with pytest.raises(KafkaCallTimeout, match=f"{step} blocked"):
        sequence.publish("a", OFFSETS, group)
        sequence.settle()
    waited = time.perf_counter() - started
    producer.release.set()
    assert FAST.call_s + FAST.grace_s <= waited < 1
    assert producer.calls[-1] == "abort_transaction"
    assert KafkaCallTimeout.retriable


def test_a_blocked_abort_is_given_up_on_too_and_the_first_error_raised():
    producer = RecordingProducer(fail_at="produce", block_at="abort_transaction")
    with pytest.raises(KafkaException, match="produce failed"):
        transactions(producer).publish("a", OFFSETS, group)
    producer.release.set()
    assert producer.calls[-1] == "abort_transaction"


def test_revoking_a_partition_waits_for_its_last_commit_then_drops_its_state_only():
    settings = Settings()
    detector = Detector(settings, ModelServing.fixed(settings, FraudModel.load(DEFAULT_MODEL_PATH)), "unit")
    held = hold_two_partitions(detector)
    producer = RecordingProducer(block_at="commit_transaction")
    detector._transactions = transactions(producer, PATIENT)
    detector._transactions.publish("a", OFFSETS, group)
    threading.Timer(0.05, producer.release.set).start()

    detector._on_revoke(None, OFFSETS)

    assert producer.calls[-1] == "committed a"
    assert detector.state.partitions == [1]
    assert set(detector.state.engine.export_state(held)) == set(held[1::2])


def test_a_commit_failing_while_partitions_are_revoked_is_kept_for_the_loop_and_the_state_dropped():
    """Raised out of librdkafka's rebalance callback, the error would be lost with the consumer left
    without partitions; the loop raises it instead, and the session starts over with fresh clients."""
    settings = Settings()
    detector = Detector(settings, ModelServing.fixed(settings, FraudModel.load(DEFAULT_MODEL_PATH)), "unit")
    held = hold_two_partitions(detector)
    producer = RecordingProducer(fail_at="commit_transaction")
    detector._transactions = transactions(producer, PATIENT)
    detector._transactions.publish("a", OFFSETS, group)

    detector._on_revoke(None, OFFSETS)

    assert isinstance(detector._revoke_failure, KafkaException)
    assert producer.calls[-1] == "abort_transaction"
    assert detector.state.partitions == [1]
    assert set(detector.state.engine.export_state(held)) == set(held[1::2])


def hold_two_partitions(detector: Detector) -> list[str]:
    """The detector given partitions 0 and 1 (``OFFSETS`` revokes 0), customers alternating between
    them; the customers, in that order."""
    engine = FeatureEngine()
    frame = synthetic(customers=4, days=2)
    engine.transform(frame)
    customers = sorted(set(customer_ids(frame)))
    states = engine.export_state(customers)
    for partition in (0, 1):
        detector.state.add(partition, {c: states[c] for c in customers[partition::2]})
    return customers


class RecordingConsumer:
    """The consumer call ``Detector._publish`` makes: its group metadata."""

    def consumer_group_metadata(self) -> object:
        return GROUP


def test_a_batch_whose_offsets_a_rebalance_made_stale_is_undone_scored_again_and_published():
    """Offsets refused for a stale generation (a cooperative rebalance bumped it while the batch was
    scored): the transaction is aborted, the batch's state changes undone, the batch scored again and
    published with the new generation; the session goes on (no restart, no restore)."""
    settings = Settings()
    detector = Detector(settings, ModelServing.fixed(settings, FraudModel.load(DEFAULT_MODEL_PATH)), "unit")
    detector._router = Router("transactions", 3)
    held = hold_two_partitions(detector)
    reference = FeatureEngine()
    reference.load_state(detector.state.engine.export_state(held))
    batch = synthetic(customers=6, days=1)
    customers = [*held, *customer_ids(batch)]
    reference.transform(batch)
    messages = [
        Message(topic="transactions", partition=0, offset=offset, value=b"") for offset in (39, 40, 41)
    ]
    prepared = Prepared(messages, Scored([], [], dict.fromkeys(customer_ids(batch), 0)), [], [], 0.0)
    scored: list[list[Message]] = []

    def score(batch_messages: list[Message]) -> Prepared:  # what ``_prepare`` does to the state
        scored.append(batch_messages)
        detector.state.engine.checkpoint()
        detector.state.engine.transform(batch)
        return prepared

    detector._prepare = score
    producer = RecordingProducer("send_offsets_to_transaction", code=KafkaError.ILLEGAL_GENERATION, fails=1)
    sequence = Transactions(producer, detector._produce, detector._committed, FAST)
    detector._publish(RecordingConsumer(), sequence, score(messages))
    sequence.settle()

    assert scored == [messages, messages]
    assert [call for call in producer.calls if call != "produce"] == [
        "init_transactions",
        "begin_transaction",
        "send_offsets_to_transaction",
        "abort_transaction",
        "begin_transaction",
        "send_offsets_to_transaction",
        "commit_transaction",
    ]
    assert detector.state.engine.export_state(customers) == reference.export_state(customers)


def test_any_other_refusal_of_the_offsets_ends_the_session():
    settings = Settings()
    detector = Detector(settings, ModelServing.fixed(settings, FraudModel.load(DEFAULT_MODEL_PATH)), "unit")
    detector._router = Router("transactions", 3)
    detector.state.engine.checkpoint()
    messages = [Message(topic="transactions", partition=0, offset=41, value=b"")]
    producer = RecordingProducer(fail_at="send_offsets_to_transaction", code=KafkaError.UNKNOWN_MEMBER_ID)
    sequence = Transactions(producer, detector._produce, detector._committed, FAST)
    with pytest.raises(KafkaException):
        detector._publish(RecordingConsumer(), sequence, Prepared(messages, Scored([], [], {}), [], [], 0.0))
    assert producer.calls[-1] == "abort_transaction"


def test_a_batch_with_nothing_to_score_rolls_back_to_itself_not_to_the_batch_before():
    """Every message forwarded or dead: a refused batch's rollback must leave the committed one before."""
    settings = Settings()
    detector = Detector(settings, ModelServing.fixed(settings, FraudModel.load(DEFAULT_MODEL_PATH)), "unit")
    held = hold_two_partitions(detector)
    detector.state.engine.checkpoint()
    committed = synthetic(customers=6, days=1)
    detector.state.engine.transform(committed)  # the batch before, committed
    customers = [*held, *customer_ids(committed)]
    states = detector.state.engine.export_state(customers)

    detector._score([], decode_batch([]), np.array([], dtype=object))
    detector.state.engine.rollback()

    assert detector.state.engine.export_state(customers) == states
