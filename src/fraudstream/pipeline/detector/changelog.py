"""The detector's state changelog: per-customer feature state in a compacted topic, partitioned like
the input (``Settings.topic_state``).

Each batch's transaction writes the state of the customers it changed to the changelog partition of
their input partition, so the state commits together with the offsets it corresponds to. A detector
that is assigned partitions restores the committed state (``read_committed``) of exactly those
partitions, read to their end, before it scores anything from them; in a cooperative rebalance, only
the partitions it gains.
"""

from __future__ import annotations

from confluent_kafka import OFFSET_BEGINNING, Producer, TopicPartition

from fraudstream.config import Settings
from fraudstream.ml.features import FeatureEngine
from fraudstream.pipeline import kafka

# A detector scores nothing of a partition before its state is read to the end: generous, since a
# partition of a million customers is hundreds of megabytes (``fraudstream bench-rebalance``), and
# below librdkafka's max.poll.interval.ms (300 s), past which the group would evict the restoring member.
RESTORE_TIMEOUT_S = 240.0


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

    def restore(self, partitions: list[int]) -> dict[int, dict[str, bytes | None]]:
        """The committed state of the customers of each of ``partitions``."""
        return read_changelog(self.settings, partitions)


def read_changelog(
    settings: Settings, partitions: list[int], timeout: float = RESTORE_TIMEOUT_S
) -> dict[int, dict[str, bytes | None]]:
    """The latest committed state per customer (None = deleted) in each given changelog partition.

    Raises ``ReadToEndTimeout`` if they are not read to their end in ``timeout``.
    """
    states: dict[int, dict[str, bytes | None]] = {partition: {} for partition in partitions}
    if not partitions:
        return states
    starts = [TopicPartition(settings.topic_state, partition, OFFSET_BEGINNING) for partition in partitions]
    with kafka.reader(settings, f"{settings.detector_group}-restore", **kafka.BULK_READ) as reader:
        for message in kafka.read_to_end(reader, starts, timeout):
            states[message.partition()][message.key().decode()] = message.value()
    return states
