"""The detector's state changelog: per-customer feature state in a compacted topic, partitioned like
the input (``Settings.topic_state``).

Each batch's transaction writes the state of the customers it changed to the changelog partition of
their input partition, so the state commits together with the offsets it corresponds to. A detector
that is assigned partitions restores the committed state (``read_committed``) of exactly those
partitions, read to their end, before it scores anything from them.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from fraudstream.config import Settings
from fraudstream.errors import ChangelogRestoreTimeout
from fraudstream.ml.features import FeatureEngine


class Changelog:
    """Writes and restores the feature state of one detector."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic_state

    def write(self, producer: Producer, engine: FeatureEngine, partition_of_customer: dict[str, int]) -> None:
        """Produce the state of the customers ``engine`` changed since the last write, each to the
        partition of its input partition, where the detector that owns that partition after a
        rebalance restores it from."""
        for customer, state in engine.export_state(engine.touched_customers()).items():
            producer.produce(self.topic, state, customer.encode(), partition=partition_of_customer[customer])

    def restore(self, partitions: list[int]) -> FeatureEngine:
        """A feature engine holding the committed state of the customers of ``partitions``."""
        engine = FeatureEngine()
        engine.load_state(read_changelog(self.settings, partitions))
        return engine


def read_changelog(
    settings: Settings, partitions: list[int], timeout: float = 30.0
) -> dict[str, bytes | None]:
    """The latest committed state per customer in the given changelog partitions (None = deleted)."""
    if not partitions:
        return {}
    topic = settings.topic_state
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
            raise ChangelogRestoreTimeout(
                f"changelog partitions {sorted(pending)} not restored in {timeout:.0f} s"
            )
        return states
    finally:
        reader.close()
