"""``schema.transaction_times``: numpy parses plain real times, pandas' ISO 8601 parser the rest, and
the two give the same instant for every time, or the same refusal."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from fraudstream.contracts import schema

YEARS = ("0000", "0001", "1677", "1900", "2000", "2019", "2020", "2100", "2262", "9999")


def pandas_times(texts: list[str]) -> np.ndarray:
    return pd.to_datetime(pd.Series(texts), format="ISO8601", errors="coerce", cache=False).to_numpy()


def one_by_one(texts: list[str]) -> np.ndarray:
    """Each time parsed alone, so that a time pandas refuses does not send the others to pandas."""
    parse = schema.transaction_times
    return np.array(
        [parse({"transaction_time": np.array([text], dtype=object)}, "coerce")[0] for text in texts],
        dtype="datetime64[us]",
    )


def assert_same_instants(texts: list[str]) -> None:
    expected, parsed = pandas_times(texts).astype("datetime64[us]"), one_by_one(texts)
    assert (np.isnat(parsed) == np.isnat(expected)).all()
    assert (parsed[~np.isnat(parsed)] == expected[~np.isnat(expected)]).all()


def test_every_day_of_every_month_including_the_unreal_ones():
    texts = [f"{y}-{m:02d}-{d:02d} 10:00" for y, m, d in itertools.product(YEARS, range(14), range(33))]
    assert_same_instants(texts)


def test_every_hour_minute_and_second_including_the_unreal_ones():
    clock = itertools.product(range(26), (0, 1, 30, 59, 60, 99), ("", ":00", ":59", ":60", ":99"))
    texts = [f"2020-02-29 {h:02d}:{m:02d}{s}" for h, m, s in clock]
    assert_same_instants(texts)


@pytest.mark.parametrize(
    "text",
    [
        "2020-07-01T10:00",
        "2020-07-01",
        "2020-07-01 10:00:00.5",
        "2020-07-01 10:00+05:00",
        "٢٠٢٠-07-01 10:00",
        " 2020-07-01 10:00",
        "",
    ],
)
def test_times_that_are_not_plain_go_to_pandas(monkeypatch, text):
    """numpy would take some of these (a ``T``, a date alone, an offset it converts to UTC): pandas'
    parser decides them all, as it did before numpy parsed the plain ones."""
    calls = []
    parse = pd.to_datetime

    def recorded(*args, **kwargs):
        calls.append(args)
        return parse(*args, **kwargs)

    monkeypatch.setattr(pd, "to_datetime", recorded)
    texts = pd.Series([text], dtype=object)
    parsed = schema.transaction_times(pd.DataFrame({"transaction_time": texts}), "coerce")
    assert len(calls) == 1
    expected = parse(texts, format="ISO8601", errors="coerce", cache=False).to_numpy()
    assert parsed.dtype == expected.dtype and (pd.isna(parsed) == pd.isna(expected)).all()
    assert (parsed[~pd.isna(parsed)] == expected[~pd.isna(expected)]).all()


def test_a_batch_of_plain_real_times_is_parsed_without_pandas(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("parsed by pandas")

    monkeypatch.setattr(pd, "to_datetime", refuse)
    texts = np.array(["2019-01-01 10:00", "2020-02-29 23:59:59"], dtype=object)
    parsed = schema.transaction_times({"transaction_time": texts})
    assert parsed.tolist() == [pd.Timestamp(text).to_pydatetime() for text in texts]


def test_an_unreal_or_missing_time_is_refused_as_pandas_refuses_it():
    with pytest.raises(ValueError):
        schema.transaction_times(pd.DataFrame({"transaction_time": ["2020-07-01 10:00", "2019-02-30 10:00"]}))
    frame = pd.DataFrame({"transaction_time": ["2020-07-01 10:00", None]})
    assert np.isnat(schema.transaction_times(frame, "coerce")).tolist() == [False, True]
