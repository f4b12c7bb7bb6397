"""Transaction messages for tests: good ones, a corpus of odd ones, and the reference verdicts on them.

The reference is the detector's per-message path: msgspec's schema, then the real-date check.
"""

from __future__ import annotations

import uuid

import msgspec
import numpy as np
import orjson
import pandas as pd

from fraudstream.contracts import schema
from fraudstream.contracts.messages import MAX_MESSAGE_BYTES, BadMessage, decode_transaction, encoder
from fraudstream.ops.loadgen import transactions


def slow_path(values: list[bytes | None]) -> tuple[pd.DataFrame, list[str], list[int], list[tuple[int, str]]]:
    """The detector's decoding before batch_decode: msgspec per message, then the real-date check."""
    records, dead = [], []
    for index, value in enumerate(values):
        try:
            records.append((index, decode_transaction(value)))
        except BadMessage as bad:
            dead.append((index, bad.reason))
    if records:
        times = pd.Series([tx.data.transaction_time for _, tx in records])
        times = pd.to_datetime(times, format="ISO8601", errors="coerce")
        unreal = set(np.flatnonzero(times.isna().to_numpy()).tolist())
        dead += [
            (records[row][0], f"unparsable transaction_time: {records[row][1].data.transaction_time!r}")
            for row in sorted(unreal)
        ]
        records = [record for row, record in enumerate(records) if row not in unreal]
    rows = [msgspec.structs.astuple(tx.data) for _, tx in records]
    frame = schema.coerce(pd.DataFrame.from_records(rows, columns=list(schema.INPUT_COLUMNS)))
    ids = [str(tx.transaction_id) for _, tx in records]
    return frame, ids, [index for index, _ in records], sorted(dead)


def good_rows(count: int, seed: int = 3) -> list[dict]:
    return transactions(count, seed=seed).to_dict("records")


def good_values(count: int, seed: int = 3) -> list[bytes]:
    return [encoder.encode({"transaction_id": uuid.uuid4(), "data": row}) for row in good_rows(count, seed)]


BASE = {"transaction_id": "550E8400-E29B-41D4-A716-446655440000", "data": good_rows(1, seed=7)[0]}
BASE_BYTES = orjson.dumps(BASE)


def with_data(**changes: object) -> bytes:
    return orjson.dumps({**BASE, "data": {**BASE["data"], **changes}})


def replace_value(field: str, raw: bytes) -> bytes:
    """BASE with the JSON text of one data field replaced verbatim (for what orjson cannot write)."""
    old = f'"{field}":'.encode() + orjson.dumps(BASE["data"][field])
    assert old in BASE_BYTES
    return BASE_BYTES.replace(old, f'"{field}":'.encode() + raw, 1)


def corpus() -> list[bytes | None]:
    """Malformed, odd and valid-but-unusual messages (``labelled_corpus`` without the labels)."""
    return [value for value, _ in labelled_corpus()]


def contract_refusals() -> list[int]:
    """Indices in ``corpus()`` of the messages the input contract refuses (labelled by hand)."""
    return [index for index, (_, refused) in enumerate(labelled_corpus()) if refused]


def labelled_corpus() -> list[tuple[bytes | None, bool]]:
    """Each odd message with whether the contract refuses it, written by hand from the contract (the
    README's "Dead letters": not JSON, missing fields, wrong types, non-UUID ids, impossible times,
    absurd values, over 64 KiB), not computed by any decoder: the tests hold the code to these labels.

    One letter per message of a group, in order: R refused, A accepted.
    """
    missing = [
        orjson.dumps({**BASE, "data": {k: v for k, v in BASE["data"].items() if k != column}})
        for column in schema.INPUT_COLUMNS
    ]
    not_json = [b"", b"{", b"}", b"{}", b"null", b"[]", b"123", b'"text"', b"\xff\xfe\x00", b"{'a': 1}", None]
    framing = [
        b"  " + BASE_BYTES,
        BASE_BYTES + b"\n",
        BASE_BYTES + b" ",
        BASE_BYTES + BASE_BYTES,
        BASE_BYTES + b"\n" + BASE_BYTES,
        BASE_BYTES + b"}",
        BASE_BYTES + b",{}",
        BASE_BYTES.replace(b',"data":', b',\n\r\t "data" :\n'),
        BASE_BYTES.replace(b",", b",\n"),
        b"\xef\xbb\xbf" + BASE_BYTES,
    ]
    shape = [
        orjson.dumps({"data": BASE["data"]}),
        orjson.dumps({"transaction_id": BASE["transaction_id"]}),
        orjson.dumps({**BASE, "data": None}),
        orjson.dumps({**BASE, "data": list(BASE["data"].values())}),
        orjson.dumps({**BASE, "transaction_id": 12345}),
        orjson.dumps({**BASE, "transaction_id": "not-a-uuid"}),
        orjson.dumps({**BASE, "transaction_id": "550e8400-e29b-41d4-a716"}),
        orjson.dumps({**BASE, "transaction_id": "550e8400e29b41d4a716446655440000"}),
        orjson.dumps({**BASE, "transaction_id": "{550e8400-e29b-41d4-a716-446655440000}"}),
        orjson.dumps({**BASE, "extra": [1, {"x": None}]}),
        orjson.dumps({**BASE, "data": {**BASE["data"], "extra": "x"}}),
        BASE_BYTES[:-1] + b',"extra":NaN}',
        BASE_BYTES[:-1] + b',"extra":' + b"[" * 100 + b"]" * 100 + b"}",
        BASE_BYTES[:-1] + b',"data":' + orjson.dumps(BASE["data"]) + b"}",
        BASE_BYTES[:-1] + b',"transaction_id":"' + str(uuid.uuid4()).encode() + b'"}',
        BASE_BYTES.replace(b'"merch":', b'"\\u006derch":'),
    ]
    types = [
        with_data(amount="12.50"),
        with_data(amount=None),
        with_data(amount=True),
        with_data(amount=12),
        with_data(post_code="76443"),
        with_data(post_code=1.5),
        with_data(post_code=1.0),
        with_data(post_code=False),
        replace_value("post_code", b"1e2"),
        with_data(lat="north"),
        with_data(population_city=[1]),
        with_data(merch={"name": "x"}),
        with_data(merch=123),
        with_data(gender=True),
        with_data(transaction_time=20190101),
        with_data(cat_id=""),
        with_data(jobs=None),
    ]
    values = [
        with_data(transaction_time="yesterday"),
        with_data(transaction_time="2019-13-45 25:61"),
        with_data(transaction_time="2019-02-30 10:00"),
        with_data(transaction_time="2020-02-29 23:59"),
        with_data(transaction_time="2019-01-01 10:00:60"),
        with_data(transaction_time="2019-01-01 24:00"),
        with_data(transaction_time="2019-01-01 10:00\n"),
        with_data(transaction_time="\u0662\u0660\u0661\u0669-01-01 10:00"),
        with_data(transaction_time=" 2019-01-01 10:00"),
        with_data(amount=-1.0),
        with_data(amount=1e308),
        with_data(amount=10_000_000),
        with_data(amount=10_000_001),
        with_data(amount=0.0),
        replace_value("amount", b"-0"),
        replace_value("amount", b"-0.0"),
        replace_value("lat", b"-0.0"),
        replace_value("amount", b"1E2"),
        replace_value("amount", b"4.9e-324"),
        replace_value("amount", b"1e400"),
        replace_value("amount", b"1" + b"0" * 400),
        replace_value("amount", b"NaN"),
        replace_value("amount", b"Infinity"),
        replace_value("amount", b"-Infinity"),
        replace_value("amount", b"01"),
        replace_value("post_code", b"-0"),
        replace_value("post_code", b"9223372036854775808"),
        with_data(lat=91.0),
        with_data(lat=-90.5),
        with_data(lat=90),
        with_data(lon=200.0),
        with_data(merchant_lat=1000.0),
        with_data(merchant_lon=-181.0),
        with_data(population_city=-5),
        with_data(population_city=100_000_001),
        with_data(jobs="x" * 200),
        with_data(jobs="x" * 201),
        with_data(jobs="\U0001f600" * 200),
        with_data(jobs="\U0001f600" * 201),
        with_data(jobs="x" * 100_000),
        with_data(jobs="x" * (MAX_MESSAGE_BYTES - 600)),
        with_data(name_1="Jos\u00e9 \u00d8rsted \u6771\u4eac"),
        with_data(name_1="a\x00b"),
        replace_value("name_1", b'"Jos\\u00e9 \\ud83d\\ude00"'),
        replace_value("name_1", b'"\\ud800"'),
        replace_value("name_1", b'"\\udc00x"'),
        replace_value("name_1", b'"a\tb"'),
        replace_value("name_1", b'"a\\xb"'),
        replace_value("street", b'"a\\"b\\\\c\\/d"'),
        BASE_BYTES.replace(b'"data":{', b'"data":{"merch":"first",'),
    ]
    labels = {
        "missing": "R" * len(missing),
        "not_json": "R" * len(not_json),
        # leading/trailing whitespace and whitespace inside are JSON; trailing data and a BOM are not
        "framing": "AAARRRRAAR",
        # a UUID without hyphens is one (msgspec); extra fields are ignored; duplicate keys: the last wins
        "shape": "RRRRRRRARAARAAAA",
        # an integer amount is a number; a float or string post code is not an integer
        "types": "RRRA" + "R" * 13,
        # real dates only (a leap day is one); bounds inclusive; -0 is 0; 200 characters at most; no NUL
        "values": "RRRARRARRRRARAAAAAARRRRRRARRRARRRRRARARRRARARRRRAA",
    }
    groups = {
        "missing": missing,
        "not_json": not_json,
        "framing": framing,
        "shape": shape,
        "types": types,
        "values": values,
    }
    labelled = []
    for name, group in groups.items():
        labelled += [(value, label == "R") for value, label in zip(group, labels[name], strict=True)]
    return labelled
