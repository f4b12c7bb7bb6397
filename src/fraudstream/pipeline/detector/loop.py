"""The detector: consumes ``transactions``, scores micro-batches with CatBoost, produces ``scoring``.

Exactly-once from ``transactions`` to ``scoring``: every batch is one Kafka transaction holding its
score messages, its dead letters, the changed per-customer feature state (a compacted changelog,
partitioned like the input) and the consumer offsets. A crash anywhere aborts the open transaction;
the restarted detector (or another one taking the partitions) restores the state of its partitions
from the changelog and resumes at the committed offsets, so it recomputes exactly what was lost.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from numpy.typing import ArrayLike

from fraudstream.config import Settings
from fraudstream.contracts.batch_decode import DecodedBatch, decode_batch
from fraudstream.contracts.messages import (
    dead_letter_headers,
    encoder,
)
from fraudstream.contracts.schema import customer_ids
from fraudstream.infra.topics import state_topic
from fraudstream.logs import fields
from fraudstream.ml.features import FeatureEngine
from fraudstream.ml.model import FraudModel
from fraudstream.pipeline.producer import producer_config
from fraudstream.telemetry import Readiness, ServiceMetrics

logger = logging.getLogger(__name__)

RETRY_BACKOFF_S = (0.5, 1, 2, 5, 10)
TXN_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Scored:
    """The score messages of one batch, keyed like their inputs, and where each customer's state goes."""

    keys: list[bytes | None]
    values: list[bytes]
    partition_of_customer: dict[str, int]


@dataclass(frozen=True)
class Prepared:
    """A consumed batch, scored and ready for its transaction."""

    messages: list[Message]
    scored: Scored
    dead: list[tuple[Message, str]]
    started: float


class Detector:
    def __init__(self, settings: Settings, model: FraudModel, instance: str | None = None) -> None:
        self.settings = settings
        self.model = model
        self.instance = instance or socket.gethostname()
        self.engine = FeatureEngine()
        self.metrics = ServiceMetrics("detector")
        self.metrics.model_info.labels("detector", model.version).set(1)
        self.readiness = Readiness()
        self._stop = threading.Event()
        self._committing: tuple[Prepared, Producer, _Blocking] | None = None

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Process until stopped; Kafka failures are retried with backoff on fresh clients."""
        failures = 0
        while not self._stop.is_set():
            try:
                self._run_session()
                return
            except KafkaException as error:
                self.metrics.errors.inc()
                self.readiness.connected = False
                self.readiness.detail = f"retrying after: {error}"
                delay = RETRY_BACKOFF_S[min(failures, len(RETRY_BACKOFF_S) - 1)]
                failures += 1
                logger.warning(
                    "kafka failure, restarting clients", extra=fields(error=str(error), retry_in_s=delay)
                )
                self._stop.wait(delay)

    def _run_session(self) -> None:
        """One consumer/producer pair; any failure ends it and the state is rebuilt from the changelog."""
        self.engine = FeatureEngine()
        producer = Producer(self._producer_config())
        producer.init_transactions(30)
        consumer = Consumer(self._consumer_config())
        consumer.subscribe(
            [self.settings.topic_transactions], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        logger.info("detector started", extra=fields(instance=self.instance, model=self.model.version))
        try:
            while not self._stop.is_set():
                messages = self._next_batch(consumer)
                prepared = self._prepare(messages) if messages else None
                self._settle()
                if prepared is not None:
                    self._publish(prepared, consumer, producer)
                else:
                    self.readiness.batch_done()
                self._record_lag(consumer)
            self._settle()
        finally:
            self._committing = None
            consumer.close()
            producer.flush(5)

    def _record_lag(self, consumer: Consumer) -> None:
        """Messages behind the end per assigned partition, from the watermarks fetches bring (no request)."""
        for position in consumer.position(consumer.assignment()):
            end = consumer.get_watermark_offsets(position, cached=True)[1]
            if position.offset >= 0 and end >= 0:
                self.metrics.consumer_lag.labels("detector", str(position.partition)).set(
                    end - position.offset
                )

    def _next_batch(self, consumer: Consumer) -> list[Message]:
        """Wait for one message, then take whatever else is already fetched, up to the batch size:
        small batches (low latency) when traffic is light, full ones (high throughput) under load."""
        first = consumer.consume(1, self.settings.batch_timeout_ms / 1000)
        if not first:
            return first
        return first + consumer.consume(self.settings.batch_max_messages - 1, 0)

    def _prepare(self, messages: list[Message]) -> Prepared:
        """Decode and score a batch: the CPU work, done while the previous batch's commit completes."""
        started = time.perf_counter()
        kept, batch = self._decode(messages)
        sources = [kept[index] for index in batch.positions]
        dead = [(kept[index], reason) for index, reason in batch.dead]
        return Prepared(messages, self._score(sources, batch), dead, started)

    def _publish(self, prepared: Prepared, consumer: Consumer, producer: Producer) -> None:
        """One transaction: scores, dead letters, changed state and offsets; its commit is left running."""
        producer.begin_transaction()
        try:
            scored = prepared.scored
            for key, value in zip(scored.keys, scored.values, strict=True):
                producer.produce(self.settings.topic_scoring, value, key)
            for message, reason in prepared.dead:
                self._dead_letter(producer, message, reason)
            self._write_state(producer, scored.partition_of_customer)
            offsets, group = _next_offsets(prepared.messages), consumer.consumer_group_metadata()
            _Blocking(
                TXN_TIMEOUT_S,
                "send_offsets_to_transaction",
                producer.send_offsets_to_transaction,
                offsets,
                group,
            ).wait()
        except KafkaException:
            _abort(producer)
            raise
        self._committing = (
            prepared,
            producer,
            _Blocking(TXN_TIMEOUT_S, "commit_transaction", producer.commit_transaction),
        )

    def _settle(self) -> None:
        """Wait for the commit left running by ``_publish``, if any; a failed one is aborted and raised."""
        if self._committing is None:
            return
        (prepared, producer, commit), self._committing = self._committing, None
        try:
            commit.wait()
        except KafkaException:
            _abort(producer)
            raise
        written = len(prepared.scored.values)
        elapsed = time.perf_counter() - prepared.started
        self.metrics.record_batch(len(prepared.messages), written, len(prepared.dead), elapsed)
        self.readiness.batch_done()

    def _decode(self, messages: list[Message]) -> tuple[list[Message], DecodedBatch]:
        """The batch's records (Kafka errors raised, end-of-partition events skipped), decoded."""
        kept = []
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(error)
            kept.append(message)
        return kept, decode_batch([message.value() for message in kept])

    def _score(self, messages: list[Message], batch: DecodedBatch) -> Scored:
        """Score messages: ``messages[i]`` is the Kafka record of ``batch.frame`` row i."""
        if batch.frame.empty:
            return Scored([], [], {})
        frame = batch.frame
        customers = customer_ids(frame)
        features = self.engine.features_and_update(frame, customers, batch.times)
        scores = self.model.predict(features)
        flags = (scores > self.settings.threshold).astype(int)
        reasons = self._reasons(features, scores)
        flagged = np.flatnonzero(flags)
        inputs = (
            dict(zip(flagged.tolist(), frame.iloc[flagged].to_dict("records"), strict=True))
            if len(flagged)
            else {}
        )
        version = self.model.version
        values = [
            encoder.encode(
                {
                    "transaction_id": transaction_id,
                    "score": score,
                    "fraud_flag": flag,
                    "reasons": reasons.get(row, []),
                    "model_version": version,
                    "produced_at": message.timestamp()[1],
                    **({"transaction": inputs[row]} if flag else {}),
                }
            )
            for row, (message, transaction_id, score, flag) in enumerate(
                zip(messages, batch.transaction_ids, scores.tolist(), flags.tolist(), strict=True)
            )
        ]
        partitions = dict(zip(customers, (m.partition() for m in messages), strict=True))
        return Scored([message.key() for message in messages], values, partitions)

    def _reasons(self, features: dict[str, ArrayLike], scores: np.ndarray) -> dict[int, list[dict]]:
        """Top SHAP reasons by row of the scores worth a look (SHAP costs ~10x a prediction)."""
        explained = np.flatnonzero(scores >= self.settings.explain_min_score)
        if len(explained) == 0:
            return {}
        rows = {name: np.asarray(features[name])[explained] for name in self.model.feature_names}
        return dict(zip(explained.tolist(), self.model.explain(rows), strict=True))

    def _write_state(self, producer: Producer, partition_of_customer: dict[str, int]) -> None:
        """Write the changed customers' state to the changelog partition of their input partition,
        where the detector that owns that partition after a rebalance restores it from."""
        touched = self.engine.touched_customers()
        for customer, state in self.engine.export_state(touched).items():
            producer.produce(
                state_topic(self.settings),
                state,
                customer.encode(),
                partition=partition_of_customer[customer],
            )

    def _dead_letter(self, producer: Producer, message: Message, reason: str) -> None:
        headers = dead_letter_headers(reason, message.topic(), message.partition(), message.offset())
        producer.produce(self.settings.dlq_transactions, message.value(), message.key(), headers=headers)
        logger.warning(
            "dead letter",
            extra=fields(reason=reason, partition=message.partition(), offset=message.offset()),
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = [p.partition for p in partitions]
        restored = self._restore_state(numbers)
        self.readiness.assigned_partitions = numbers
        self.readiness.connected = True
        logger.info("partitions assigned", extra=fields(partitions=numbers, customers_restored=restored))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._settle()  # the last batch of these partitions is committed before another detector takes them
        self.engine = FeatureEngine()
        self.readiness.assigned_partitions = []
        logger.info("partitions revoked", extra=fields(partitions=[p.partition for p in partitions]))

    def _restore_state(self, partitions: Iterable[int]) -> int:
        """Load the committed changelog of ``partitions`` into a fresh feature engine."""
        self.engine = FeatureEngine()
        states = read_changelog(self.settings, list(partitions))
        self.engine.load_state(states)
        self.engine.touched_customers()
        return len(states)

    def _producer_config(self) -> dict[str, object]:
        return {
            **producer_config(self.settings),
            "transactional.id": f"{self.settings.detector_group}-{self.instance}",
            "transaction.timeout.ms": 15000,
            # librdkafka retries a transactional request the coordinator cannot serve yet (the previous
            # commit still completing) after this: with the default 100 ms, send_offsets_to_transaction
            # stalled 85-125 ms every ~6 s at 1,000 tx/s, most of the p99 latency; with 10 ms, none.
            "retry.backoff.ms": 10,
        }

    def _consumer_config(self) -> dict[str, object]:
        return {
            **self.settings.kafka_client_config(),
            "group.id": self.settings.detector_group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "session.timeout.ms": 10000,  # a killed detector's partitions move on within 10 s
            "heartbeat.interval.ms": 3000,
            "fetch.wait.max.ms": 20,
            "queued.max.messages.kbytes": 65536,
        }


def read_changelog(
    settings: Settings, partitions: list[int], timeout: float = 30.0
) -> dict[str, bytes | None]:
    """The latest committed state per customer in the given changelog partitions (None = deleted)."""
    if not partitions:
        return {}
    topic = state_topic(settings)
    reader = Consumer(
        {
            **settings.kafka_client_config(),
            "group.id": f"{settings.detector_group}-restore",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        ends = {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout)[1] for p in partitions}
        pending = {p for p, end in ends.items() if end > 0}
        reader.assign([TopicPartition(topic, p, 0) for p in pending])
        states: dict[str, bytes | None] = {}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for message in reader.consume(10000, 0.5):
                if message.error() is not None:
                    if message.error().code() == KafkaError._PARTITION_EOF:
                        pending.discard(message.partition())
                        continue
                    raise KafkaException(message.error())
                states[message.key().decode()] = message.value()
                if message.offset() + 1 >= ends[message.partition()]:
                    pending.discard(message.partition())
        if pending:
            raise KafkaException(f"changelog partitions {sorted(pending)} not restored in {timeout:.0f} s")
        return states
    finally:
        reader.close()


def _next_offsets(messages: list[Message]) -> list[TopicPartition]:
    """The offset after each partition's last message (a partition's messages arrive in offset order)."""
    last = {(message.topic(), message.partition()): message.offset() for message in messages}
    return [TopicPartition(topic, partition, offset + 1) for (topic, partition), offset in last.items()]


class _Blocking:
    """``call(*args, seconds)`` on a thread of its own, given up on if it blocks past its own timeout.

    librdkafka can block in a transactional call past its timeout when the group coordinator
    goes away (librdkafka issues 5456 and 5511): the call is left behind on its thread, and the
    raised error makes the detector start over with fresh clients, whose init_transactions fences it.
    The caller may work meanwhile and ``wait`` later: the detector scores the next batch while the
    previous one commits.
    """

    def __init__(self, seconds: float, what: str, call: Callable[..., object], *args: object) -> None:
        self._seconds, self._what = seconds, what
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(call, *args), name=what, daemon=True)
        self._thread.start()

    def _run(self, call: Callable[..., object], *args: object) -> None:
        try:
            call(*args, self._seconds)
        except BaseException as error:
            self._error = error

    def wait(self) -> None:
        """Return when the call has returned; raise its error, or a timeout if it is still blocked."""
        self._thread.join(self._seconds + 5)
        if self._thread.is_alive():
            message = f"{self._what} blocked for {self._seconds + 5:.0f} s"
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, message))
        if self._error is not None:
            raise self._error


def _abort(producer: Producer) -> None:
    try:
        _Blocking(10, "abort_transaction", producer.abort_transaction).wait()
    except KafkaException as error:
        logger.warning("abort failed", extra=fields(error=str(error)))
