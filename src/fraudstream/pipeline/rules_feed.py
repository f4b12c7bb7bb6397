"""Rules through Kafka: publishing a rule version, and following the ``rules`` topic.

The compacted ``rules`` topic is the rules' source of truth (one partition: see ``infra.topics``).
``publish`` writes one version with an idempotent producer and returns its offset. ``RuleFeed`` reads the
whole topic from the beginning (assigned, no consumer group, read_committed) when it starts, then
follows it on a background thread, holding an immutable ``RuleSet`` snapshot that a caller reads at
each batch boundary: a new version applies from the next batch on, without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from fraudstream.config import Settings
from fraudstream.logs import fields
from fraudstream.pipeline import kafka
from fraudstream.rules import rule as rules
from fraudstream.rules.rule import MAX_NOTE_LENGTH, Rule, with_enabled
from fraudstream.rules.ruleset import RuleFailure, RuleLog, RuleSet

logger = logging.getLogger(__name__)

PARTITION = 0
POLL_S = 0.2
FAILED_NOTE = "disabled after failing at run time: "  # the note of a version ``disable_failed`` makes


def publish(settings: Settings, version: Rule, timeout: float = 15.0) -> int:
    """Write one rule version (key = its id); return its offset once the broker has it. Raises
    ``KafkaException`` when it is not acknowledged in ``timeout`` seconds."""
    delivered: list[tuple[KafkaError | None, int]] = []
    producer = Producer(kafka.producer_config(settings, **{"linger.ms": 0}))
    producer.produce(
        settings.topic_rules,
        rules.encode(version),
        version.id.encode(),
        partition=PARTITION,
        on_delivery=lambda error, message: delivered.append((error, message.offset())),
    )
    remaining = producer.flush(timeout)
    if remaining or not delivered:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"rule {version.id} not acknowledged"))
    error, offset = delivered[0]
    if error is not None:
        raise KafkaException(error)
    logger.info(
        "rule published",
        extra=fields(rule=version.id, version=version.version, enabled=version.enabled, offset=offset),
    )
    return offset


def failed(rule: Rule) -> bool:
    """Whether ``rule`` is a version that disabled its rule after it failed at run time."""
    return not rule.enabled and rule.note.startswith(FAILED_NOTE)


def disable_failed(
    settings: Settings, ruleset: RuleSet, failures: Iterable[RuleFailure], author: str
) -> list[Rule]:
    """Publish a disabled version of each failed rule still in force as it failed, the error in its note;
    return those versions. A rule already changed since (edited, disabled) is left as it is."""
    disabled = []
    for failure in failures:
        current = ruleset.get(failure.rule.id)
        if current != failure.rule or not current.enabled:
            continue
        note = f"{FAILED_NOTE}{failure.error}"[:MAX_NOTE_LENGTH]
        version = with_enabled(current, False, author, note)
        publish(settings, version)
        disabled.append(version)
        logger.warning(
            "rule disabled", extra=fields(rule=version.id, version=version.version, error=failure.error)
        )
    return disabled


class RuleFeed:
    """The rules topic, read to its end on ``start`` and followed afterwards on a daemon thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._log = RuleLog()
        self._rules = self._log.snapshot()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self.error: str | None = None  # the last failure to read the topic, while it lasts

    @property
    def rules(self) -> RuleSet:
        """The latest snapshot: immutable, so a batch keeps the one it started with."""
        return self._rules

    def start(self, timeout: float = 30.0) -> RuleFeed:
        """Read the topic up to its current end, then follow it. Raises ``KafkaException`` if the end
        is not reached in ``timeout`` seconds (the broker or the topic is missing)."""
        self._read_to_end(timeout)
        self._thread = threading.Thread(target=self._follow, name="rule-feed", daemon=True)
        self._thread.start()
        return self

    def _read_to_end(self, timeout: float) -> Consumer:
        """The snapshot read up to the topic's current end; returns the consumer, positioned there."""
        # a group id is required by the client; it is never joined (the partition is assigned)
        group = f"{self.settings.topic_rules}-reader"
        self._consumer = Consumer(
            kafka.consumer_config(self.settings, group, **{"isolation.level": "read_committed"})
        )
        deadline = time.monotonic() + timeout
        try:
            end = self._end_offset(deadline)
            self._consumer.assign([TopicPartition(self.settings.topic_rules, PARTITION, OFFSET_BEGINNING)])
            while self._rules.offset + 1 < end and self._position() < end:
                if time.monotonic() > deadline:
                    raise KafkaException(
                        KafkaError(
                            KafkaError._TIMED_OUT, f"rules topic not read to offset {end} in {timeout} s"
                        )
                    )
                self._poll()
        except BaseException:
            self._consumer.close()
            raise
        logger.info(
            "rules loaded", extra=fields(rules=len(self._rules.history), active=len(self._rules.active))
        )
        return self._consumer

    def _end_offset(self, deadline: float) -> int:
        """The topic's end offset now; a topic just created may take a moment to be known."""
        assert self._consumer is not None
        partition = TopicPartition(self.settings.topic_rules, PARTITION)
        while True:
            try:
                return self._consumer.get_watermark_offsets(partition, max(0.1, deadline - time.monotonic()))[
                    1
                ]
            except KafkaException as error:
                unknown = error.args[0].code() in (
                    KafkaError._UNKNOWN_PARTITION,
                    KafkaError.UNKNOWN_TOPIC_OR_PART,
                )
                if not unknown:
                    raise
                if time.monotonic() > deadline:
                    message = (
                        f"topic {self.settings.topic_rules} does not exist (`fraudstream topics` creates it)"
                    )
                    raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, message)) from error
                time.sleep(0.2)

    def _position(self) -> int:
        """The next offset to read (past records and any transaction markers consumed so far)."""
        assert self._consumer is not None
        [position] = self._consumer.position([TopicPartition(self.settings.topic_rules, PARTITION)])
        return position.offset

    def wait_for(self, offset: int, timeout: float = 10.0) -> bool:
        """Whether the snapshot includes ``offset`` (e.g. one just published) within ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: self._rules.offset >= offset, timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll()
                self.error = None
            except Exception as error:  # the client reconnects by itself; say so while it lasts
                self.error = str(error)
                logger.warning("rules topic unreadable", extra=fields(error=str(error)), exc_info=True)
                self._stop.wait(1.0)
        assert self._consumer is not None
        self._consumer.close()

    def _poll(self) -> None:
        assert self._consumer is not None
        messages = self._consumer.consume(500, POLL_S)
        records = 0
        for message in messages:
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(message.error())
            self._log.add(message.offset(), message.key(), message.value())
            records += 1
        if records:
            snapshot = self._log.snapshot()
            with self._changed:
                self._rules = snapshot
                self._changed.notify_all()
            logger.info("rules changed", extra=fields(offset=snapshot.offset, active=len(snapshot.active)))


def read_rules(settings: Settings, timeout: float = 30.0) -> RuleSet:
    """The rules topic's state now, read once to its end on a consumer closed before returning (for a
    command or a page run; a service keeps a ``RuleFeed``). Raises ``KafkaException`` as ``start``."""
    feed = RuleFeed(settings)
    feed._read_to_end(timeout).close()
    return feed.rules
