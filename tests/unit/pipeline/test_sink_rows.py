"""The sink's rows: ``scored_at`` is the score record's Kafka timestamp, the same on every redelivery."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from aiokafka import ConsumerRecord

from fraudstream.contracts.messages import ScoreMessage, encoder
from fraudstream.pipeline.sink import COLUMNS, rows_and_dead_letters

SCORED_AT = COLUMNS.index("scored_at")


def record(timestamp: int, offset: int = 0) -> ConsumerRecord:
    value = encoder.encode(ScoreMessage(uuid.uuid4(), 0.2, 0))
    return ConsumerRecord("scoring", 0, offset, timestamp, 0, None, value, None, len(value), 0, [])


def test_scored_at_is_the_records_timestamp_to_the_millisecond():
    decoded = rows_and_dead_letters([record(1_767_323_045_678)])

    assert decoded.rows[0][SCORED_AT] == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert rows_and_dead_letters([record(1_767_323_045_678)]).rows[0][SCORED_AT] == decoded.rows[0][SCORED_AT]


def test_a_record_without_a_usable_timestamp_is_a_dead_letter():
    decoded = rows_and_dead_letters([record(-1), record(2**62, offset=1), record(0, offset=2)])

    assert [reason for _, reason in decoded.dead] == [
        "the score record has no Kafka timestamp: its scored_at is unknown",
        f"the score record's Kafka timestamp {2**62} is out of range",
    ]
    assert decoded.rows[0][SCORED_AT] == datetime(1970, 1, 1, tzinfo=UTC)
