"""The load generator: transactions in the input format, in the dataset's categories."""

from __future__ import annotations

from fraudstream.contracts import schema
from fraudstream.ops import loadgen


def test_the_load_generator_spends_in_every_known_category_and_no_other() -> None:
    frame = loadgen.transactions(2000)

    assert set(frame["cat_id"]) == set(schema.CATEGORIES)
    assert list(frame.columns) == list(schema.INPUT_COLUMNS)
