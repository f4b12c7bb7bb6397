"""The columnar batch decoder gives exactly the verdicts, rows and reasons of the per-message slow path."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from fraudstream.contracts import schema
from fraudstream.contracts.batch_decode import COLUMNAR_FROM, DecodedBatch, decode_batch
from tests.message_corpus import BASE_BYTES, contract_refusals, corpus, good_values, slow_path, with_data


def assert_same_as_slow_path(values: list[bytes | None]) -> None:
    """Through the columnar parse, and through msgspec alone (the path of small batches)."""
    for columnar_from in (0, len(values) + 1):
        assert_batch_equals(decode_batch(values, columnar_from), *slow_path(values))


def assert_batch_equals(
    batch: DecodedBatch,
    frame: pd.DataFrame,
    ids: list[str],
    positions: list[int],
    dead: list[tuple[int, str]],
) -> None:
    assert batch.dead == dead
    assert all(reason for _, reason in batch.dead)
    assert batch.positions.tolist() == positions
    assert batch.transaction_ids == ids
    assert {name: values.dtype for name, values in batch.columns.items()} == schema.ARRAY_DTYPES
    decoded = schema.coerce(pd.DataFrame(batch.columns))
    pd.testing.assert_frame_equal(decoded, frame, check_exact=True)
    assert np.array_equal(batch.times, schema.transaction_times(frame))
    assert (
        np.signbit(decoded[list(schema.FLOAT_COLUMNS)]) == np.signbit(frame[list(schema.FLOAT_COLUMNS)])
    ).all(axis=None)


def test_good_messages_give_the_slow_paths_frame_exactly():
    values = good_values(3000)
    batch = decode_batch(values)
    assert batch.dead == []
    assert batch.positions.tolist() == list(range(3000))
    assert_same_as_slow_path(values)


@pytest.mark.parametrize("path", ["columnar", "msgspec"])
def test_the_decoder_refuses_exactly_what_the_contract_rules_out(path):
    values = corpus()
    batch = decode_batch(values, 0 if path == "columnar" else len(values) + 1)

    assert [index for index, _ in batch.dead] == contract_refusals()
    assert all(reason for _, reason in batch.dead)
    assert batch.positions.tolist() == [i for i in range(len(values)) if i not in contract_refusals()]


@pytest.mark.parametrize("index", range(len(corpus())))
def test_each_odd_message_among_good_ones_is_decided_like_the_slow_path(index):
    good = good_values(20)
    assert_same_as_slow_path([*good[:10], corpus()[index], *good[10:]])


def test_the_whole_corpus_mixed_with_good_messages():
    odd, good = corpus(), good_values(2 * len(corpus()))
    assert_same_as_slow_path(
        [value for pair in zip(good[::2], good[1::2], odd, strict=True) for value in pair]
    )


@pytest.mark.parametrize("seed", range(25))
def test_random_mixes_keep_order_and_positions(seed):
    rng = random.Random(seed)
    odd, good = corpus(), good_values(400, seed=seed)
    values = [
        rng.choice(odd) if rng.random() < rng.choice((0.0, 0.01, 0.2, 0.9)) else value for value in good
    ]
    assert_same_as_slow_path(values)


@pytest.mark.parametrize(
    "times",
    [
        ["2019-01-01 10:00", "2019-01-01 10:00:05"],
        ["2019-01-01 10:00:05", "2019-01-01 10:00"],
        ["2019-02-30 10:00", "2019-01-01 10:00:05", "2019-01-01 10:00", "0000-01-01 10:00"],
    ],
)
def test_each_time_is_checked_on_its_own_whatever_else_is_in_the_batch(times):
    assert_same_as_slow_path([with_data(transaction_time=time) for time in times] + good_values(5))
    refused = {index for index, _ in decode_batch([with_data(transaction_time=time) for time in times]).dead}
    assert refused == {index for index, time in enumerate(times) if time.startswith("2019-02-30")}


def test_empty_batches_and_all_bad_batches():
    assert_same_as_slow_path([])
    assert_same_as_slow_path([None, b"", b"{}"])
    empty = decode_batch([None])
    assert {name: values.dtype for name, values in empty.columns.items()} == schema.ARRAY_DTYPES
    assert len(empty) == 0


@pytest.mark.parametrize("columnar_from", [0, COLUMNAR_FROM])
def test_messages_msgspec_cannot_decode_are_refused_not_raised(columnar_from):
    """msgspec raises UnicodeDecodeError on invalid UTF-8 in a string, RecursionError on deep nesting."""
    bad_utf8 = with_data(merch="\u00ff").replace("\u00ff".encode(), b"\xff")
    deep = BASE_BYTES[:-1] + b',"extra":' + b"[" * 5000 + b"]" * 5000 + b"}"
    batch = decode_batch([*good_values(3), bad_utf8, deep], columnar_from)
    assert [index for index, _ in batch.dead] == [3, 4]
    assert "UTF-8" in batch.dead[0][1] and "nested" in batch.dead[1][1]
    assert batch.positions.tolist() == [0, 1, 2]


def test_good_batches_never_call_msgspec_per_message(monkeypatch):
    def refuse(value):
        raise AssertionError("slow path used")

    monkeypatch.setattr("fraudstream.contracts.batch_decode.decode_transaction", refuse)
    assert len(decode_batch(good_values(COLUMNAR_FROM))) == COLUMNAR_FROM
