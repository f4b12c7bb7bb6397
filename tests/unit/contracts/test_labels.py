"""Label messages and label files: what is accepted, and what is refused with which reason."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import msgspec
import pytest

from fraudstream.contracts.labels import Defaults, LabelFileError, read_label_file
from fraudstream.contracts.messages import BadMessage, decode_label, encoder, label_identity, new_label

TID = uuid.UUID("8009e2e9-f976-4b8d-b870-b243b6c47c40")
AT = datetime(2026, 1, 2, 10, 0, tzinfo=UTC)
DEFAULTS = Defaults(source="chargeback", author="ops", at=datetime(2026, 2, 1, tzinfo=UTC))


def label_json(**changes: object) -> bytes:
    message = msgspec.to_builtins(new_label(TID, 1, "analyst", "ann", AT, "card stolen"))
    return encoder.encode({**message, **changes})


def test_a_label_round_trips_and_its_id_is_its_content():
    label = new_label(TID, 1, "analyst", "ann", AT, "card stolen")

    assert decode_label(encoder.encode(label)) == label
    assert label.label_id == label_identity(TID, 1, "analyst", "ann", AT)
    assert (
        label.label_id
        == new_label(TID, 1, "analyst", "ann", AT.astimezone(timezone(timedelta(hours=2)))).label_id
    )
    assert label.label_id != new_label(TID, 0, "analyst", "ann", AT).label_id
    assert label.label_id != new_label(TID, 1, "analyst", "bob", AT).label_id


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "JSON is malformed"),
        (None, "empty message"),
        (label_json(label=2), "`int` <= 1 - at `$.label`"),
        (label_json(label="1"), "Expected `int`, got `str` - at `$.label`"),
        (label_json(transaction_id="abc"), "Invalid UUID - at `$.transaction_id`"),
        (label_json(at="2026-01-02T10:00:00"), "`datetime` with a timezone component - at `$.at`"),
        (label_json(at="yesterday"), "Invalid RFC3339 encoded datetime - at `$.at`"),
        (label_json(author=""), "length >= 1 - at `$.author`"),
        (label_json(author="a\x00b"), "at `$.author`"),
        (label_json(note="x" * 2001), "length <= 2000 - at `$.note`"),
        (label_json(author="mallory"), "does not match its content"),
        (encoder.encode({"transaction_id": str(TID), "label": 1}), "missing required field `label_id`"),
    ],
)
def test_malformed_labels_are_refused_with_a_reason(value, reason):
    with pytest.raises(BadMessage) as refused:
        decode_label(value)
    assert reason in refused.value.reason


def test_a_label_file_becomes_label_messages_with_defaults_for_what_it_omits():
    text = (
        "transaction_id,label,at,source,note\n"
        f"{TID},1,2026-01-02 10:00,,stolen card\n"
        f"{TID},0,2026-01-03T09:30:00+01:00,bank,\n"
        f"{TID},1,,,\n"
    )

    labels = read_label_file(text, DEFAULTS)

    assert [(m.label, m.source, m.author, m.note) for m in labels] == [
        (1, "chargeback", "ops", "stolen card"),
        (0, "bank", "ops", None),
        (1, "chargeback", "ops", None),
    ]
    assert [m.at for m in labels] == [AT, datetime(2026, 1, 3, 8, 30, tzinfo=UTC), DEFAULTS.at]


def test_a_file_with_bad_rows_is_refused_naming_each_row_and_reason():
    text = f"transaction_id,label\n{TID},1\nnot-a-uuid,1\n{TID},yes\n{TID},1\n{TID},1,extra\n"

    with pytest.raises(LabelFileError) as refused:
        read_label_file(text, DEFAULTS)

    assert [(error.line, error.reason) for error in refused.value.errors] == [
        (3, "transaction_id 'not-a-uuid' is not a UUID"),
        (4, "label 'yes' is not 0 (legitimate) or 1 (fraud)"),
        (6, "more fields than columns"),
    ]
    assert str(refused.value).startswith("3 bad row(s), nothing sent: line 3: transaction_id")


def test_a_bad_time_is_reported_with_the_expected_format():
    with pytest.raises(LabelFileError, match=r"line 2: at 'last tuesday' is not an ISO 8601 time"):
        read_label_file(f"transaction_id,label,at\n{TID},1,last tuesday\n", DEFAULTS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("transaction_id\nx\n", "missing columns: label"),
        ("transaction_id,label,lable\n", "unknown columns: lable"),
        ("transaction_id,label\n", "the file has no rows"),
    ],
)
def test_a_file_without_the_expected_header_or_rows_is_refused(text, message):
    with pytest.raises(LabelFileError, match=message):
        read_label_file(text, DEFAULTS)
