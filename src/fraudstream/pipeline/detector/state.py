"""The feature state of a detector's assigned partitions, taken and given up partition by partition.

One ``FeatureEngine`` holds every assigned partition's customers (a batch spanning partitions is one
vectorised computation), and a set of customers per partition says what to forget when a partition is
revoked. With the cooperative-sticky assignor a rebalance adds or revokes some partitions only: the
partitions kept are neither dropped nor restored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fraudstream.ml.features import FeatureEngine


class PartitionedState:
    """A feature engine over the assigned partitions, and the partition each customer's state is in."""

    def __init__(self) -> None:
        self.engine = FeatureEngine()
        self._customers: dict[int, set[str]] = {}

    @property
    def partitions(self) -> list[int]:
        return sorted(self._customers)

    def customers(self, partition: int) -> int:
        """How many customers' state ``partition`` holds."""
        return len(self._customers.get(partition, ()))

    def add(self, partition: int, states: Mapping[str, bytes | None]) -> None:
        """Take ``partition`` with its customers' committed states (``None``: a deleted customer)."""
        live = {customer: state for customer, state in states.items() if state is not None}
        self.engine.load_state(live)
        self._customers[partition] = set(live)

    def drop(self, partitions: Iterable[int]) -> None:
        """Give up ``partitions``: their customers' state is forgotten, the other partitions' kept."""
        for partition in partitions:
            self.engine.load_state(dict.fromkeys(self._customers.pop(partition, ())))

    def record(self, partition_of_customer: Mapping[str, int]) -> None:
        """Note the partition of the customers a batch scored: the new ones join their partition."""
        for customer, partition in partition_of_customer.items():
            self._customers[partition].add(customer)
