"""A detector's state taken and given up partition by partition: the partitions kept are untouched."""

from __future__ import annotations

import pandas as pd

from fraudstream.contracts.schema import customer_ids
from fraudstream.ml.features import FeatureEngine
from fraudstream.ops.loadgen import transactions
from fraudstream.pipeline.detector.state import PartitionedState


def states_by_partition(frame: pd.DataFrame, partitions: int) -> dict[int, dict[str, bytes]]:
    """The state of every customer of ``frame`` after it, split over partitions by the customer's rank."""
    engine = FeatureEngine()
    engine.transform(frame)
    customers = sorted(set(customer_ids(frame)))
    states = engine.export_state(customers)
    return {p: {c: states[c] for c in customers[p::partitions]} for p in range(partitions)}


def test_dropping_a_partition_forgets_its_customers_only():
    frame = transactions(600, customer_count=30, seed=1)
    split = states_by_partition(frame, 3)
    state = PartitionedState()
    for partition, states in split.items():
        state.add(partition, states)
    state.drop([1])
    assert state.partitions == [0, 2]
    assert state.customers(1) == 0
    kept = [*split[0], *split[2]]
    assert state.engine.export_state([*kept, *split[1]]) == {
        c: s for p in (0, 2) for c, s in split[p].items()
    }


def test_a_partition_added_later_scores_as_if_it_had_always_been_there():
    history = transactions(600, customer_count=30, seed=2)
    later = transactions(200, customer_count=30, seed=2, start="2020-08-01 00:00")
    split = states_by_partition(history, 2)
    state = PartitionedState()
    state.add(0, split[0])
    state.add(1, split[1])
    expected = FeatureEngine()
    expected.transform(history)
    pd.testing.assert_frame_equal(state.engine.transform(later), expected.transform(later))


def test_customers_a_batch_scored_join_their_partition_and_deleted_ones_are_not_restored():
    state = PartitionedState()
    state.add(0, {"a": None})
    state.add(1, {})
    frame = transactions(20, customer_count=4, seed=5)
    customers = customer_ids(frame)
    state.engine.transform(frame, customers)
    state.record(dict.fromkeys(customers, 1))
    assert state.customers(0) == 0 and state.customers(1) == len(set(customers))
    state.drop([1])
    assert len(state.engine) == 0
