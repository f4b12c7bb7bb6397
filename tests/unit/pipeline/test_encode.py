"""Score messages: what the detector writes to ``scoring`` for a decoded batch and its scores."""

from __future__ import annotations

import numpy as np
import orjson
from confluent_kafka import TIMESTAMP_CREATE_TIME, Message

from fraudstream.contracts.batch_decode import decode_batch
from fraudstream.contracts.messages import decode_score
from fraudstream.pipeline.detector.encode import score_messages
from fraudstream.pipeline.detector.rules import Decided
from tests.message_corpus import good_values


def records(values: list[bytes]) -> list[Message]:
    return [
        Message(
            topic="transactions",
            partition=0,
            offset=n,
            value=value,
            timestamp=(TIMESTAMP_CREATE_TIME, 1000 + n),
        )
        for n, value in enumerate(values)
    ]


def undecided(rows: int) -> Decided:
    return Decided(np.array(["allow"] * rows, dtype=object), [()] * rows, -1)


def test_each_row_gets_its_id_score_flag_reasons_version_and_input_timestamp():
    values = good_values(3)
    batch = decode_batch(values)
    reasons = {2: [{"feature": "amount", "contribution": 1.5}]}
    scores, flags = np.array([0.1, 0.6, 0.9]), np.array([0, 1, 1])

    big = {"id": "big", "version": 2}
    decided = Decided(np.array(["allow", "review", "block"], dtype=object), [(), (), (big,)], 4)

    encoded = score_messages(batch, records(values), scores, flags, reasons, "m-1", decided)

    decoded = [decode_score(value) for value in encoded]
    assert [str(m.transaction_id) for m in decoded] == batch.transaction_ids
    assert [m.score for m in decoded] == [0.1, 0.6, 0.9]
    assert [m.fraud_flag for m in decoded] == [0, 1, 1]
    assert [m.produced_at for m in decoded] == [1000, 1001, 1002]
    assert {m.model_version for m in decoded} == {"m-1"}
    assert [len(m.reasons) for m in decoded] == [0, 0, 1]
    assert decoded[2].reasons[0].feature == "amount"
    assert [m.decision for m in decoded] == ["allow", "review", "block"]
    assert [[(r.id, r.version) for r in m.rules] for m in decoded] == [[], [], [("big", 2)]]


def test_every_row_carries_its_input_message_as_received():
    values = good_values(3)
    values[1] = values[1].replace(b'{"transaction_id"', b'{ "extra": 1, "transaction_id"')
    batch = decode_batch(values)

    scores, flags = np.array([0.1, 0.9, 0.2]), np.array([0, 1, 0])

    encoded = score_messages(batch, records(values), scores, flags, {}, "m", undecided(3))

    assert [orjson.loads(value)["input"] for value in encoded] == [orjson.loads(v) for v in values]
    assert [bytes(decode_score(value).input.data) for value in encoded] == [
        orjson.dumps(orjson.loads(v)["data"]) for v in values
    ]


def test_an_empty_batch_gives_no_messages():
    batch = decode_batch([])
    assert score_messages(batch, [], np.array([]), np.array([], dtype=int), {}, "m", undecided(0)) == []
