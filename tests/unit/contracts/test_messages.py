"""The wire formats: what is accepted, and the reason given for what is not."""

from __future__ import annotations

import uuid

import orjson
import pytest

from fraudstream.contracts.messages import MAX_MESSAGE_BYTES, BadMessage, decode_score, decode_transaction

ROW = {
    "transaction_time": "2019-09-14 02:46",
    "merch": "fraud_Stokes, Christiansen and Sipes",
    "cat_id": "grocery_net",
    "amount": 25.79,
    "name_1": "Michael",
    "name_2": "Rodriguez",
    "gender": "M",
    "street": "172 Paula Inlet Apt. 650",
    "one_city": "Cross Plains",
    "us_state": "TX",
    "post_code": 76443,
    "lat": 32.1482,
    "lon": -99.1872,
    "population_city": 1897,
    "jobs": "Chief Operating Officer",
    "merchant_lat": 31.772057,
    "merchant_lon": -99.103183,
}
ID = "550e8400-e29b-41d4-a716-446655440000"


def message(**changes: object) -> bytes:
    return orjson.dumps({"transaction_id": ID, "data": {**ROW, **changes}})


def test_a_seed_format_message_decodes() -> None:
    decoded = decode_transaction(message())
    assert decoded.transaction_id == uuid.UUID(ID)
    assert decoded.data.amount == 25.79 and decoded.data.post_code == 76443


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "malformed"),
        (None, "empty"),
        (orjson.dumps({"data": ROW}), "transaction_id"),
        (orjson.dumps({"transaction_id": "x", "data": ROW}), "UUID"),
        (message(amount=-5), "$.data.amount"),
        (message(amount=1e308), "$.data.amount"),
        (message(amount="12"), "$.data.amount"),
        (message(lat=91.0), "$.data.lat"),
        (message(transaction_time="yesterday"), "$.data.transaction_time"),
        (message(post_code=None), "$.data.post_code"),
        (b'{"transaction_id": "' + ID.encode() + b'", "data": {"amount": NaN}}', "malformed"),
        (message(jobs="x" * (MAX_MESSAGE_BYTES + 1)), "too large"),
    ],
)
def test_bad_transactions_are_refused_with_a_reason(value: bytes | None, reason: str) -> None:
    with pytest.raises(BadMessage) as refused:
        decode_transaction(value)
    assert reason in refused.value.reason


def test_missing_fields_are_named() -> None:
    row = {key: value for key, value in ROW.items() if key != "cat_id"}
    with pytest.raises(BadMessage, match="cat_id"):
        decode_transaction(orjson.dumps({"transaction_id": ID, "data": row}))


def test_score_messages_accept_the_seed_list_of_one_record() -> None:
    record = {"score": 0.995, "fraud_flag": 1, "transaction_id": ID}
    assert decode_score(orjson.dumps([record])) == decode_score(orjson.dumps(record))


def test_score_messages_out_of_range_are_refused() -> None:
    with pytest.raises(BadMessage, match="score"):
        decode_score(orjson.dumps({"score": 1.5, "fraud_flag": 1, "transaction_id": ID}))
    with pytest.raises(BadMessage, match="expected one"):
        decode_score(orjson.dumps([]))


def test_score_messages_carry_the_decision_and_matched_rules_and_older_ones_still_decode() -> None:
    old = decode_score(orjson.dumps({"score": 0.2, "fraud_flag": 0, "transaction_id": ID}))
    new = decode_score(
        orjson.dumps(
            {
                "score": 0.2,
                "fraud_flag": 0,
                "transaction_id": ID,
                "decision": "block",
                "rules": [{"id": "big", "version": 3}],
            }
        )
    )

    assert (old.decision, old.rules) == (None, [])
    assert new.decision == "block" and [(r.id, r.version) for r in new.rules] == [("big", 3)]
    with pytest.raises(BadMessage, match="decision"):
        decode_score(orjson.dumps({"score": 0.2, "fraud_flag": 0, "transaction_id": ID, "decision": "deny"}))
