"""Decoding a batch of ``transactions`` messages into typed columns: for large batches one pyarrow
JSON parse in C, instead of one msgspec struct and one row per message; small batches, where that
parse's fixed cost dominates, go to msgspec alone. The columns are plain numpy arrays
(``schema.arrays_from``), not a DataFrame, whose construction alone would cost a small batch more
than its features.

The verdicts are exactly those of ``messages.decode_transaction`` per message, followed by the
detector's real-date check over the accepted rows. The columnar path only ever *accepts* rows, and only
where its parse provably agrees with msgspec; every other message is decided by msgspec on its own, so
the columnar path only has to be fast for the common, all-valid batch. Where pyarrow is more lenient:

- unknown fields fail the whole parse (``unexpected_field_behavior="error"``), so non-JSON literals
  (``NaN``, ``Infinity``) or nesting deeper than msgspec's recursion limit cannot hide in ignored fields;
  in known fields those fail the bounds, and wrong JSON types or duplicate keys fail the parse;
- it does not validate UTF-8, so a batch that is not ASCII is checked first;
- it reads the integer ``-0`` as -0.0 where msgspec gives 0.0, so negative zeros go to msgspec;
- its regexes run in RE2, whose ``\\d`` and ``$`` match a subset of what Python's do, so whatever it
  accepts, msgspec accepts too (UUIDs: only the hyphenated form is taken, then lowercased).
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from fraudstream.contracts.messages import (
    MAX_MESSAGE_BYTES,
    NUL_ESCAPE,
    BadMessage,
    TransactionData,
    TransactionMessage,
    decode_transaction,
)
from fraudstream.contracts.schema import INPUT_COLUMNS, arrays_from, transaction_times
from fraudstream.errors import SchemaMismatch

UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

_FIELDS = {field.name: field.type for field in msgspec.inspect.type_info(TransactionData).fields}
_ARROW_TYPES = {
    msgspec.inspect.StrType: pa.string(),
    msgspec.inspect.IntType: pa.int64(),
    msgspec.inspect.FloatType: pa.float64(),
}
_SCHEMA = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("data", pa.struct([(name, _ARROW_TYPES[type(kind)]) for name, kind in _FIELDS.items()])),
    ]
)
_PARSE_OPTIONS = pj.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="error")
_OPEN, _CLOSE = ord("{"), ord("}")
MIN_PART = 64
COLUMNAR_FROM = 500

# Its fields are INPUT_COLUMNS, in order: messages.py checks that when it loads.
if not all(
    kind.gt is None and kind.lt is None and kind.multiple_of is None
    for kind in _FIELDS.values()
    if not isinstance(kind, msgspec.inspect.StrType)
):
    raise SchemaMismatch(
        "TransactionData bounds a number other than by ge/le, which batch_decode does not check"
    )


@dataclass(frozen=True)
class DecodedBatch:
    """The valid messages of a batch as typed columns, in input order, and the invalid ones."""

    columns: dict[str, np.ndarray]  # INPUT_COLUMNS, of schema.ARRAY_DTYPES
    transaction_ids: list[str]
    positions: np.ndarray
    dead: list[tuple[int, str]]
    times: np.ndarray  # the rows' transaction_time, parsed (``schema.transaction_times``)

    def __len__(self) -> int:
        return len(self.transaction_ids)

    def select(self, rows: np.ndarray) -> DecodedBatch:
        """The batch of these rows only (indices, in the order given); no dead messages."""
        columns = {name: values[rows] for name, values in self.columns.items()}
        ids = [self.transaction_ids[row] for row in rows.tolist()]
        return DecodedBatch(columns, ids, self.positions[rows], [], self.times[rows])


def decode_batch(values: list[bytes | None], columnar_from: int = COLUMNAR_FROM) -> DecodedBatch:
    """Decode message values as the detector's slow path would, message by message, but in bulk.

    Batches of fewer than ``columnar_from`` messages go to msgspec alone: below that, the columnar
    parse's fixed cost (~3 ms) is more than msgspec's per message.

    ``columns`` have the valid rows, with ``schema.ARRAY_DTYPES``; ``transaction_ids`` are canonical
    UUID strings; ``positions[i]`` is the index in ``values`` of row i; ``dead`` holds (index in
    ``values``, reason) for every invalid message, in input order.
    """
    columnar = _columnar(values) if len(values) >= columnar_from else None
    undecided = np.ones(len(values), dtype=bool)
    if columnar is not None:
        undecided[columnar[2]] = False
    decided = [(int(index), _decode_one(values[index])) for index in np.flatnonzero(undecided)]
    slow = [(index, tx) for index, tx in decided if isinstance(tx, TransactionMessage)]
    dead = [(index, reason) for index, reason in decided if isinstance(reason, str)]
    columns, ids, positions = _merge(columnar, _slow_rows(slow))
    return _drop_unreal_times(columns, ids, positions, dead)


Columns = dict[str, np.ndarray]
Rows = tuple[Columns, list[str], np.ndarray]


def _columnar(values: list[bytes | None]) -> Rows | None:
    """The messages the columnar parse accepts as (columns, ids, indices in ``values``), or None."""
    parts = _parse(values, _candidates(values))
    if not parts:
        return None
    table = pa.concat_tables([table for table, _ in parts])
    candidates = np.concatenate([indices for _, indices in parts])
    valid = _valid_rows(table)
    if not valid.all():
        table, candidates = table.filter(valid), candidates[valid]
    data = pa.Table.from_struct_array(table.column("data"))
    columns = {name: data.column(name).to_numpy(zero_copy_only=False) for name in INPUT_COLUMNS}
    return columns, pc.ascii_lower(table.column("transaction_id")).to_pylist(), candidates


def _slow_rows(slow: list[tuple[int, TransactionMessage]]) -> Rows | None:
    """The messages msgspec decided valid, as (columns, ids, indices), or None."""
    if not slow:
        return None
    rows = [msgspec.structs.astuple(tx.data) for _, tx in slow]
    return (
        arrays_from(dict(zip(INPUT_COLUMNS, zip(*rows, strict=True), strict=True))),
        [str(tx.transaction_id) for _, tx in slow],
        np.array([index for index, _ in slow], dtype=np.int64),
    )


def _candidates(values: list[bytes | None]) -> np.ndarray:
    """Indices of the messages the columnar parse may decide: present, within the size limit, framed
    as one object (``{`` first, ``}`` last), valid UTF-8 and without ``NUL_ESCAPE``.

    The framing makes every candidate parse to at least one row or fail, so after joining them with
    newlines, a row count equal to the number of candidates means one row per message, in order.
    """
    present = np.arange(len(values))
    if None in values:
        present = np.array([index for index, value in enumerate(values) if value is not None], dtype=np.int64)
    kept = [values[index] for index in present]
    lengths = np.fromiter(map(len, kept), dtype=np.int64, count=len(kept))
    ends = np.cumsum(lengths + 1) - 1
    joined = b"\n".join(kept)
    text = np.frombuffer(joined, dtype=np.uint8)
    sized = np.flatnonzero((lengths >= 2) & (lengths <= MAX_MESSAGE_BYTES))
    framed = (text[ends[sized] - lengths[sized]] == _OPEN) & (text[ends[sized] - 1] == _CLOSE)
    candidates = present[sized[framed]]
    if NUL_ESCAPE in joined:
        candidates = np.array([i for i in candidates if NUL_ESCAPE not in values[i]], dtype=np.int64)
    if joined.isascii():
        return candidates
    return np.array([index for index in candidates if _is_utf8(values[index])], dtype=np.int64)


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def _parse(values: list[bytes | None], candidates: np.ndarray) -> list[tuple[pa.Table, np.ndarray]]:
    """The candidates parsed in parts, each with its indices; a part pyarrow refuses is halved until
    it is down to MIN_PART messages, which are left to msgspec. One bad message costs two parses and
    msgspec on a few dozen messages, not msgspec on the whole batch."""
    table = _parse_part(values, candidates)
    if table is not None:
        return [(table, candidates)]
    if len(candidates) <= MIN_PART:
        return []
    half = len(candidates) // 2
    return _parse(values, candidates[:half]) + _parse(values, candidates[half:])


def _parse_part(values: list[bytes | None], candidates: np.ndarray) -> pa.Table | None:
    """The candidates parsed as NDJSON with the wire schema, or None if pyarrow refuses them."""
    if len(candidates) == 0:
        return None
    joined = b"\n".join([values[index] for index in candidates])
    options = pj.ReadOptions(use_threads=True, block_size=max(len(joined) // 2 + 1, 1 << 16))
    try:
        table = pj.read_json(pa.py_buffer(joined), read_options=options, parse_options=_PARSE_OPTIONS)
    except pa.ArrowException:
        return None
    return table if table.num_rows == len(candidates) else None


def _valid_rows(table: pa.Table) -> np.ndarray:
    """Rows that msgspec accepts too: every field present and within the msgspec constraints."""
    data = table.column("data")
    valid = _true(pc.and_(data.is_valid(), pc.match_substring_regex(table["transaction_id"], UUID_PATTERN)))
    for name, kind in _FIELDS.items():
        valid &= _valid_field(pc.struct_field(data, name), kind)
    return valid


def _valid_field(column: pa.ChunkedArray, kind: msgspec.inspect.Type) -> np.ndarray:
    valid = _true(column.is_valid())
    if isinstance(kind, msgspec.inspect.StrType):
        return valid & _valid_text(column, kind)
    numbers = column.to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):
        valid &= _within(numbers, kind.ge, kind.le)
    if isinstance(kind, msgspec.inspect.FloatType):
        valid &= ~(np.signbit(numbers) & (numbers == 0))
    return valid


def _valid_text(column: pa.ChunkedArray, kind: msgspec.inspect.StrType) -> np.ndarray:
    valid = np.ones(len(column), dtype=bool)
    if kind.pattern is not None:
        valid &= _true(pc.match_substring_regex(column, kind.pattern))
    if kind.min_length is not None or kind.max_length is not None:
        lengths = pc.utf8_length(column).to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            valid &= _within(lengths, kind.min_length, kind.max_length)
    return valid


def _within(values: np.ndarray, low: float | None, high: float | None) -> np.ndarray:
    """low <= values <= high where given; NaN (a null) is never within."""
    within = np.ones(len(values), dtype=bool)
    if low is not None:
        within &= values >= low
    if high is not None:
        within &= values <= high
    return within


def _true(mask: pa.ChunkedArray) -> np.ndarray:
    """A boolean mask as numpy, null counting as False."""
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _decode_one(value: bytes | None) -> TransactionMessage | str:
    """The slow path's verdict on one message: the message, or the reason it is refused."""
    try:
        return decode_transaction(value)
    except BadMessage as bad:
        return bad.reason


def _merge(columnar: Rows | None, slow: Rows | None) -> Rows:
    """The rows of both paths as one set of columns in input order."""
    if columnar is None or slow is None:
        return columnar or slow or (arrays_from(dict.fromkeys(INPUT_COLUMNS, ())), [], np.zeros(0, np.int64))
    positions = np.concatenate([columnar[2], slow[2]])
    order = np.argsort(positions, kind="stable")
    merged = {name: np.concatenate([columnar[0][name], slow[0][name]])[order] for name in INPUT_COLUMNS}
    ids = columnar[1] + slow[1]
    return merged, [ids[index] for index in order], positions[order]


def _drop_unreal_times(
    columns: Columns, ids: list[str], positions: np.ndarray, dead: list[tuple[int, str]]
) -> DecodedBatch:
    """Refuse rows whose transaction_time matches the pattern but is no real date (2019-02-30).

    Parsed as ISO 8601 row by row, as the features parse it, so a verdict never depends on the batch;
    the parsed times go with the batch, so the features need not parse them again.
    """
    times = transaction_times(columns, errors="coerce")
    unreal = np.flatnonzero(np.isnat(times))
    if len(unreal) == 0:
        return DecodedBatch(columns, ids, positions, sorted(dead), times)
    text = columns["transaction_time"]
    dead = dead + [(int(positions[row]), f"unparsable transaction_time: {text[row]!r}") for row in unreal]
    keep = np.setdiff1d(np.arange(len(ids)), unreal)
    return DecodedBatch(
        {name: values[keep] for name, values in columns.items()},
        [ids[row] for row in keep],
        positions[keep],
        sorted(dead),
        times[keep],
    )
