"""Wire formats of the topics, as msgspec schemas: decoding a message is validating it.

- ``transactions``: ``{"transaction_id": uuid, "data": {<the 17 input columns>}}`` (the seed's format).
- ``scoring``: ``{"transaction_id", "score", "fraud_flag"}`` (the seed's) plus ``reasons``,
  ``model_version``, ``produced_at`` (ms since epoch of the input's Kafka timestamp) and ``input``: the
  input message exactly as received, so that every scored transaction is stored with its input (the
  analyst's view, rule backtests, label exports for retraining) without the detector re-encoding it;
  with a shadow challenger, its ``shadow_score`` and ``shadow_version`` (never part of the decision),
  and ``decision`` (``block``/``review``/``allow``, from the rules and the model's flag) with ``rules``,
  the ``{"id", "version"}`` of the rules that matched (absent from older messages: they decode as None
  and []).
- ``labels``: ``{"label_id", "transaction_id", "label": 0|1, "source", "author", "at", "note"}``, a
  decision on a transaction (an analyst's review, a chargeback, ...); ``label_id`` is derived from the
  other fields but the note (``label_identity``), so the same decision sent twice is one decision.
- dead letters: the original bytes, with the reason and the source position in headers.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from fraudstream.contracts.schema import INPUT_COLUMNS
from fraudstream.errors import FraudstreamError, SchemaMismatch

MAX_MESSAGE_BYTES = 64 * 1024
# JSON's only way to write a NUL character. PostgreSQL stores no NUL in text or jsonb, and every input
# is stored as received, so a message holding it could never be written: it is refused up front (an
# escaped backslash followed by "u0000", which is not a NUL, is refused with it: no real input has it).
NUL_ESCAPE = b"\\u0000"
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2})?$"

Text = Annotated[str, Meta(min_length=1, max_length=200)]
Latitude = Annotated[float, Meta(ge=-90.0, le=90.0)]
Longitude = Annotated[float, Meta(ge=-180.0, le=180.0)]


class TransactionData(msgspec.Struct, frozen=True):
    """One input row; the bounds reject absurd values (NaN cannot be written in JSON at all)."""

    transaction_time: Annotated[str, Meta(pattern=TIME_PATTERN)]
    merch: Text
    cat_id: Text
    amount: Annotated[float, Meta(ge=0.0, le=1e7)]
    name_1: Text
    name_2: Text
    gender: Text
    street: Text
    one_city: Text
    us_state: Text
    post_code: Annotated[int, Meta(ge=0, le=99_999_999)]
    lat: Latitude
    lon: Longitude
    population_city: Annotated[int, Meta(ge=0, le=100_000_000)]
    jobs: Text
    merchant_lat: Latitude
    merchant_lon: Longitude


class TransactionMessage(msgspec.Struct, frozen=True):
    transaction_id: uuid.UUID
    data: TransactionData


class Reason(msgspec.Struct, frozen=True):
    feature: str
    contribution: float


class ReceivedInput(msgspec.Struct, frozen=True):
    """The input message inside a score message; its ``data`` is kept as the JSON it arrived as."""

    data: msgspec.Raw


class MatchedRule(msgspec.Struct, frozen=True):
    """A rule version that matched a transaction."""

    id: str
    version: int


Decision = Literal["block", "review", "allow"]


class ScoreMessage(msgspec.Struct, frozen=True, omit_defaults=True):
    transaction_id: uuid.UUID
    score: Annotated[float, Meta(ge=0.0, le=1.0)]
    fraud_flag: Annotated[int, Meta(ge=0, le=1)]
    reasons: list[Reason] = []
    model_version: str | None = None
    produced_at: int | None = None
    input: ReceivedInput | None = None
    shadow_score: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    shadow_version: str | None = None
    decision: Decision | None = None
    rules: list[MatchedRule] = []


NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL: such a label would never be written


class LabelMessage(msgspec.Struct, frozen=True):
    """A decision on a transaction: ``label`` 1 = fraud, 0 = legitimate; ``at`` carries its time zone."""

    label_id: uuid.UUID
    transaction_id: uuid.UUID
    label: Annotated[int, Meta(ge=0, le=1)]
    source: Annotated[str, Meta(min_length=1, max_length=50, pattern=NO_NUL)]
    author: Annotated[str, Meta(min_length=1, max_length=200, pattern=NO_NUL)]
    at: Annotated[datetime, Meta(tz=True)]
    note: Annotated[str, Meta(max_length=2000, pattern=NO_NUL)] | None = None


LABEL_NAMESPACE = uuid.UUID("8f0c6f0e-5a0b-4d38-9a51-2f3c1d7e4b60")


def label_identity(
    transaction_id: uuid.UUID, label: int, source: str, author: str, at: datetime
) -> uuid.UUID:
    """The deterministic id of a decision: who decided what about which transaction, and when."""
    when = at.astimezone(UTC).isoformat(timespec="microseconds")
    return uuid.uuid5(LABEL_NAMESPACE, f"{transaction_id}|{label}|{source}|{author}|{when}")


def new_label(
    transaction_id: uuid.UUID, label: int, source: str, author: str, at: datetime, note: str | None = None
) -> LabelMessage:
    """A label message with its identity filled in, checked as the labels consumer will check it.

    Raises BadMessage (a ValueError) saying which field is out of bounds.
    """
    identity = label_identity(transaction_id, label, source, author, at)
    return decode_label(
        encoder.encode(LabelMessage(identity, transaction_id, label, source, author, at, note or None))
    )


if tuple(TransactionData.__struct_fields__) != INPUT_COLUMNS:
    raise SchemaMismatch("TransactionData's fields are not schema.INPUT_COLUMNS, in that order")

transaction_decoder = msgspec.json.Decoder(TransactionMessage)
score_decoder = msgspec.json.Decoder(ScoreMessage | list[ScoreMessage])
label_decoder = msgspec.json.Decoder(LabelMessage)
encoder = msgspec.json.Encoder()


class BadMessage(FraudstreamError, ValueError):
    """A message that cannot be processed; ``reason`` goes to the dead-letter headers."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _decode(decoder: msgspec.json.Decoder, value: bytes | None) -> object:
    if value is None:
        raise BadMessage("empty message (null value)")
    if len(value) > MAX_MESSAGE_BYTES:
        raise BadMessage(f"message too large: {len(value)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        return decoder.decode(value)
    except msgspec.DecodeError as error:
        raise BadMessage(str(error)) from error
    except UnicodeDecodeError as error:  # msgspec raises it for invalid UTF-8 inside a string
        raise BadMessage(f"invalid UTF-8 in a string: {error}") from error
    except RecursionError as error:
        raise BadMessage(f"JSON nested too deeply: {error}") from error


def decode_transaction(value: bytes | None) -> TransactionMessage:
    message = _decode(transaction_decoder, value)
    if NUL_ESCAPE in value:
        raise BadMessage("contains \\u0000: PostgreSQL cannot store a NUL character")
    return message


def decode_score(value: bytes | None) -> ScoreMessage:
    """A score message, also in the seed's list-of-one-record form (``to_json(orient='records')``)."""
    decoded = _decode(score_decoder, value)
    if isinstance(decoded, list):
        if len(decoded) != 1:
            raise BadMessage(f"a list of {len(decoded)} score records; expected one")
        return decoded[0]
    return decoded


def decode_label(value: bytes | None) -> LabelMessage:
    """A label message whose ``label_id`` matches its content (a mismatch would defeat deduplication)."""
    message = _decode(label_decoder, value)
    expected = label_identity(
        message.transaction_id, message.label, message.source, message.author, message.at
    )
    if message.label_id != expected:
        raise BadMessage(f"label_id {message.label_id} does not match its content (expected {expected})")
    return message


def dead_letter_headers(reason: str, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    return [
        ("error", reason.encode()),
        ("source.topic", topic.encode()),
        ("source.partition", str(partition).encode()),
        ("source.offset", str(offset).encode()),
    ]
