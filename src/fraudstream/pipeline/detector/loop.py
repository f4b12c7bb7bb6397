"""The detector: consumes ``transactions``, scores micro-batches with CatBoost, produces ``scoring``.

Exactly-once from ``transactions`` to ``scoring``: every batch is one Kafka transaction holding its
score messages, its dead letters, the changed per-customer feature state (a compacted changelog,
partitioned like the input) and the consumer offsets (``transactions.py``). A crash anywhere aborts
the open transaction; the restarted detector (or another one taking the partitions) restores the state
of its partitions from the changelog (``changelog.py``) and resumes at the committed offsets, so it
recomputes exactly what was lost. This module is the loop and the rebalance handling: with the
cooperative-sticky assignor a rebalance moves only some partitions; the state of the partitions gained
is restored (``state.py``), that of the partitions revoked dropped after the last batch's commit, and
the partitions kept go on being scored. A message not keyed by its customer on the customer's
partition is forwarded there rather than scored (``routing.py``).
Each session follows the ``rules`` topic (``RuleFeed``): every batch is decided with the rules in force
when it is scored (``rules.py``), so a new rule version applies from the next batch on.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from numpy.typing import ArrayLike

from fraudstream.config import Settings
from fraudstream.contracts.batch_decode import DecodedBatch, decode_batch
from fraudstream.contracts.messages import dead_letter_headers
from fraudstream.contracts.schema import customer_ids
from fraudstream.logs import fields
from fraudstream.ml.model import FraudModel, Threshold, explain_floor, resolve_threshold
from fraudstream.pipeline import kafka
from fraudstream.pipeline.detector.changelog import Changelog
from fraudstream.pipeline.detector.drift import DriftGauges
from fraudstream.pipeline.detector.encode import Shadow, score_messages
from fraudstream.pipeline.detector.routing import Forward, Router
from fraudstream.pipeline.detector.rules import RuleStage
from fraudstream.pipeline.detector.serving import Models, ModelServing
from fraudstream.pipeline.detector.state import PartitionedState
from fraudstream.pipeline.detector.transactions import Transactions
from fraudstream.pipeline.retry import retry
from fraudstream.pipeline.rules_feed import RuleFeed
from fraudstream.telemetry import Readiness, ServiceMetrics

logger = logging.getLogger(__name__)


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
    forwards: list[Forward]
    started: float


class Detector:
    def __init__(self, settings: Settings, serving: ModelServing, instance: str | None = None) -> None:
        self.settings = settings
        self.serving = serving
        self.instance = instance or socket.gethostname()
        self.state = PartitionedState()
        self.changelog = Changelog(settings)
        self.metrics = ServiceMetrics("detector")
        self.drift = DriftGauges(settings.psi_warning)
        self.readiness = Readiness(extra=self._health)
        self._serving_version: str | None = None
        self._threshold = Threshold(0.5, "default")
        self._stop = threading.Event()
        self._transactions: Transactions[Prepared] | None = None
        self._revoke_failure: BaseException | None = None
        self._rules: RuleStage | None = None
        self._router: Router | None = None
        self._rebalances = 0  # rebalance callbacks served so far
        self._last_batch_at: float | None = None  # when the last batch was consumed (monotonic)
        self._paused_since: float | None = None  # the last batch before a rebalance, until the next one

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Process until stopped; Kafka failures are retried with backoff on fresh clients.

        With a registry, nothing is consumed until a champion has been loaded and checked."""
        self.serving.start()
        self.readiness.detail = "waiting for a verified champion model"
        if self.serving.wait_loaded(self._stop):
            retry(self._run_session, "kafka session", self._stop, self._disconnected)
        self.serving.stop()

    def _health(self) -> dict[str, object]:
        """What /healthz adds to readiness: the models serving, the registry, the drift, the rules."""
        rules = None if self._rules is None else self._rules.status()
        return {**self.serving.status(), "drift": self.drift.summary(), "rules": rules}

    def _disconnected(self, error: BaseException) -> None:
        self.metrics.errors.inc()
        self.readiness.connected = False
        self.readiness.detail = f"retrying after: {error}"

    def _run_session(self) -> None:
        """The rules read to the topic's end and followed, then one consumer/producer pair; any failure
        ends the session, and the next one rebuilds the state from the changelog."""
        feed = RuleFeed(self.settings).start()
        try:
            self._rules = RuleStage(self.settings, feed)
            self._process()
        finally:
            feed.stop()

    def _process(self) -> None:
        producer = Producer(self._producer_config())
        transactions = Transactions(producer, self._produce, self._committed)
        consumer = Consumer(self._consumer_config())
        # A session starts from the changelog: what a failed one left in memory (a batch scored, its
        # transaction never committed) must not outlive it.
        self.state = PartitionedState()
        topic = self.settings.topic_transactions
        self._router = Router(topic, len(kafka.partitions(consumer, topic, 30)))
        self._transactions = transactions
        consumer.subscribe(
            [self.settings.topic_transactions], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        champion = self.serving.current().champion.version
        logger.info("detector started", extra=fields(instance=self.instance, model=champion))
        try:
            while not self._stop.is_set():
                messages = self._next_batch(consumer)
                if self._revoke_failure is not None:
                    failure, self._revoke_failure = self._revoke_failure, None
                    raise failure
                if messages:
                    self._publish(consumer, transactions, self._prepare(messages))
                else:
                    transactions.settle()
                    self.readiness.batch_done()
                self._record_lag(consumer)
            transactions.settle()
        finally:
            self._transactions = None  # a failed session's commit is not waited for: fresh clients fence it
            consumer.close()
            producer.flush(5)

    def _publish(self, consumer: Consumer, transactions: Transactions[Prepared], prepared: Prepared) -> None:
        """The batch's transaction. If the broker refuses its offsets because a cooperative rebalance
        bumped the group's generation meanwhile (librdkafka rejoins in the background while the
        consumer goes on consuming), the aborted batch is undone in memory, scored again and published
        with the new generation: no restart and no restore, which would pause the partitions this
        detector keeps. Its partitions are still this detector's: a revoked partition is given up in a
        callback of ``consume``, which has not run since, and until then no other member can get it."""
        offsets = kafka.next_offsets(prepared.messages)
        try:
            transactions.publish(prepared, offsets, consumer.consumer_group_metadata)
        except KafkaException as error:
            if not _stale_generation(error):
                raise
            logger.warning(
                "batch scored again: a rebalance changed the generation", extra=fields(error=str(error))
            )
            self.state.engine.rollback()
            transactions.publish(self._prepare(prepared.messages), offsets, consumer.consumer_group_metadata)

    def _record_lag(self, consumer: Consumer) -> None:
        """Messages behind the end per assigned partition, from the watermarks fetches bring (no request)."""
        for position in consumer.position(consumer.assignment()):
            end = consumer.get_watermark_offsets(position, cached=True)[1]
            if position.offset >= 0 and end >= 0:
                self.metrics.consumer_lag.labels("detector", str(position.partition)).set(
                    end - position.offset
                )

    def _next_batch(self, consumer: Consumer) -> list[Message]:
        """A batch as ``kafka.next_batch`` takes it (the linger: fewer, larger batches at everyday rates).

        A rebalance served between its two ``consume`` calls may have revoked the partition of a message
        already returned: such messages are left to the partition's new owner, which reads them from the
        committed offset."""
        rebalances, settings = self._rebalances, self.settings
        timeout_s, linger_s = settings.batch_timeout_ms / 1000, settings.batch_linger_ms / 1000
        messages = kafka.next_batch(consumer, settings.batch_max_messages, timeout_s, linger_s)
        if not messages:
            return messages
        if self._rebalances != rebalances:
            owned = set(self.state.partitions)
            messages = [m for m in messages if m.error() is not None or m.partition() in owned]
        self._batch_consumed()
        return messages

    def _batch_consumed(self) -> None:
        """Note the time of a consumed batch; the first after a rebalance logs the pause this member saw:
        the time since the last batch it consumed before the rebalance."""
        now = time.monotonic()
        if self._paused_since is not None:
            paused_ms = round((now - self._paused_since) * 1000, 1)
            logger.info("first batch after rebalance", extra=fields(paused_ms=paused_ms))
            self._paused_since = None
        self._last_batch_at = now

    def _rebalancing(self) -> None:
        self._rebalances += 1
        if self._paused_since is None:
            self._paused_since = self._last_batch_at

    def _prepare(self, messages: list[Message]) -> Prepared:
        """Decode and score a batch: the CPU work, done while the previous batch's commit completes."""
        started = time.perf_counter()
        kept, batch = self._decode(messages)
        sources = [kept[index] for index in batch.positions]
        dead = [(kept[index], reason) for index, reason in batch.dead]
        routed = self._router.route(batch, sources, customer_ids(batch.columns))
        scored = self._score(routed.records, routed.batch, routed.customers)
        return Prepared(messages, scored, dead, routed.forwards, started)

    def _produce(self, producer: Producer, prepared: Prepared) -> None:
        """The messages of a batch's transaction: its scores, its dead letters and the changed state."""
        scored = prepared.scored
        for key, value in zip(scored.keys, scored.values, strict=True):
            producer.produce(self.settings.topic_scoring, value, key)
        for message, reason in prepared.dead:
            self._dead_letter(producer, message, reason)
        self._router.forward(producer, prepared.forwards)
        self.changelog.write(producer, self.state.engine, scored.partition_of_customer)

    def _committed(self, prepared: Prepared) -> None:
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

    def _score(self, messages: list[Message], batch: DecodedBatch, customers: np.ndarray) -> Scored:
        """Score messages: ``messages[i]`` is the Kafka record of the batch's row i, whose customer is
        ``customers[i]``."""
        self.state.engine.checkpoint()  # undone if the broker refuses the batch's offsets (``_publish``)
        if len(batch) == 0:
            return Scored([], [], {})
        models = self._models()
        features = self.state.engine.features_and_update(batch.columns, customers, batch.times)
        scores = models.champion.predict(features)
        flags = (scores > self._threshold.value).astype(int)
        reasons = self._reasons(models.champion, features, scores)
        decided = self._rules.decide(features, batch.columns, scores, flags)
        shadow = None
        if models.challenger is not None:  # the same feature columns: computed once for both
            shadow = Shadow(models.challenger.predict(features), models.challenger.version)
        if models.drift is not None:
            self.drift.observe(models.drift, features, scores)
        values = score_messages(
            batch, messages, scores, flags, reasons, models.champion.version, decided, shadow
        )
        partitions = dict(zip(customers, (m.partition() for m in messages), strict=True))
        self.state.record(partitions)
        return Scored([message.key() for message in messages], values, partitions)

    def _models(self) -> Models:
        """The models of this batch: a swap made by the registry thread lands here, between batches."""
        models = self.serving.current()
        if models.champion.version != self._serving_version:
            if self._serving_version is not None:
                self.metrics.model_info.labels("detector", self._serving_version).set(0)
            self._serving_version = models.champion.version
            self._threshold = resolve_threshold(self.settings.threshold, models.champion.metadata)
            logger.info(
                "serving model",
                extra=fields(
                    version=self._serving_version,
                    threshold=self._threshold.value,
                    source=self._threshold.source,
                    explain_min_score=self._explain_floor(),
                ),
            )
            self.metrics.model_info.labels("detector", self._serving_version).set(1)
            self.drift.forget()
        return models

    def _explain_floor(self) -> float:
        return explain_floor(self.settings.explain_min_score, self._threshold)

    def _reasons(
        self, model: FraudModel, features: dict[str, ArrayLike], scores: np.ndarray
    ) -> dict[int, list[dict]]:
        """Top SHAP reasons by row of the scores worth a look (SHAP costs ~10x a prediction)."""
        explained = np.flatnonzero(scores >= self._explain_floor())
        if len(explained) == 0:
            return {}
        rows = {name: np.asarray(features[name])[explained] for name in model.feature_names}
        return dict(zip(explained.tolist(), model.explain(rows), strict=True))

    def _dead_letter(self, producer: Producer, message: Message, reason: str) -> None:
        headers = dead_letter_headers(reason, message.topic(), message.partition(), message.offset())
        producer.produce(self.settings.dlq_transactions, message.value(), message.key(), headers=headers)
        logger.warning(
            "dead letter",
            extra=fields(reason=reason, partition=message.partition(), offset=message.offset()),
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """The partitions gained (cooperative: the others stay as they are): their state restored."""
        self._rebalancing()
        numbers = [p.partition for p in partitions]
        started = time.perf_counter()
        for partition, states in self.changelog.restore(numbers).items():
            self.state.add(partition, states)
        self.readiness.assigned_partitions = self.state.partitions
        self.readiness.connected = True
        logger.info(
            "partitions assigned",
            extra=fields(
                partitions=numbers,
                customers_restored=sum(self.state.customers(number) for number in numbers),
                restore_ms=round((time.perf_counter() - started) * 1000, 1),
                assigned=self.state.partitions,
            ),
        )

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Their last batch commits before another detector takes them. A failed commit (aborted by
        ``settle``) is kept and raised by the loop: raised out of librdkafka's callback it would be
        lost and leave the consumer without partitions; the session starts over with fresh clients.
        Only the revoked partitions' state is dropped."""
        self._rebalancing()
        try:
            if self._transactions is not None:
                self._transactions.settle()
        except Exception as error:
            self._revoke_failure = error
            logger.warning("commit failed while partitions were revoked", extra=fields(error=repr(error)))
        numbers = [p.partition for p in partitions]
        self.state.drop(numbers)
        self.readiness.assigned_partitions = self.state.partitions
        logger.info("partitions revoked", extra=fields(partitions=numbers, assigned=self.state.partitions))

    def _producer_config(self) -> dict[str, object]:
        return kafka.producer_config(
            self.settings,
            **{
                "transactional.id": f"{self.settings.detector_group}-{self.instance}",
                "transaction.timeout.ms": 15000,
                # librdkafka retries a transactional request the coordinator cannot serve yet (the
                # previous commit still completing) after this: with the default 100 ms,
                # send_offsets_to_transaction stalled for that long at everyday rates; with 10 ms, not.
                "retry.backoff.ms": 10,
            },
        )

    def _consumer_config(self) -> dict[str, object]:
        return kafka.consumer_config(
            self.settings,
            self.settings.detector_group,
            **{
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                # A rebalance moves only the partitions that change owner: the others keep their state
                # and go on being scored (``_on_assign``, ``_on_revoke``).
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": 10000,  # a killed detector's partitions move on within 10 s
                # A member learns of a rebalance from its heartbeat, and a rebalance's join waits for
                # every member: frequent heartbeats shorten what the members keeping partitions wait.
                "heartbeat.interval.ms": 500,
                "fetch.wait.max.ms": self.settings.fetch_wait_max_ms,
                "fetch.min.bytes": self.settings.fetch_min_bytes,
                "queued.max.messages.kbytes": 65536,
            },
        )


def _stale_generation(error: KafkaException) -> bool:
    cause = error.args[0] if error.args else None
    return isinstance(cause, KafkaError) and cause.code() == KafkaError.ILLEGAL_GENERATION
