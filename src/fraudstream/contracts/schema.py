"""The input format: the columns of a transaction (the seed's `new_small.csv` / Kaggle teta-ml-1-2025).

One canonical typing of a transaction table, used by every path that builds one (CSV files, Kafka
messages, training data), so that the same row always reaches the features with the same dtypes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike

from fraudstream.errors import FraudstreamError

STRING_COLUMNS = (
    "transaction_time",
    "merch",
    "cat_id",
    "name_1",
    "name_2",
    "gender",
    "street",
    "one_city",
    "us_state",
    "jobs",
)
INTEGER_COLUMNS = ("post_code", "population_city")
FLOAT_COLUMNS = ("amount", "lat", "lon", "merchant_lat", "merchant_lon")

INPUT_COLUMNS = (
    "transaction_time",
    "merch",
    "cat_id",
    "amount",
    "name_1",
    "name_2",
    "gender",
    "street",
    "one_city",
    "us_state",
    "post_code",
    "lat",
    "lon",
    "population_city",
    "jobs",
    "merchant_lat",
    "merchant_lon",
)
DTYPES = {
    **dict.fromkeys(STRING_COLUMNS, "str"),
    **dict.fromkeys(FLOAT_COLUMNS, "float64"),
    **dict.fromkeys(INTEGER_COLUMNS, "int64"),
}
# The same columns as plain numpy arrays (``arrays_from``): text as Python strings in object arrays.
ARRAY_DTYPES = {name: np.dtype(object if kind == "str" else kind) for name, kind in DTYPES.items()}
CUSTOMER_COLUMNS = ("name_1", "name_2", "street", "post_code")
# The dataset's values of ``cat_id``. A category's index here is its code in the features and in the
# detector's saved state, which trained models and changelogs depend on: never reorder, only append.
CATEGORIES = (
    "entertainment",
    "food_dining",
    "gas_transport",
    "grocery_net",
    "grocery_pos",
    "health_fitness",
    "home",
    "kids_pets",
    "misc_net",
    "misc_pos",
    "personal_care",
    "shopping_net",
    "shopping_pos",
    "travel",
)
TARGET_COLUMN = "target"
TIME_FORMAT = "%Y-%m-%d %H:%M"
# The shape of every time the input contracts allow (``messages.TIME_PATTERN``), in ASCII digits only
# (checked by Arrow's RE2, whose character classes are ASCII).
_PLAIN_TIME = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}(:[0-9]{2})?$"

# A table's columns by name: a DataFrame, or arrays of one length (``arrays_from``).
Table = pd.DataFrame | Mapping[str, ArrayLike]


class InputFormatError(FraudstreamError, ValueError):
    """A table that is not in the input format; the message says what is wrong."""


def missing_columns(columns: Iterable[str]) -> list[str]:
    present = set(columns)
    return [column for column in INPUT_COLUMNS if column not in present]


def coerce(frame: pd.DataFrame) -> pd.DataFrame:
    """Return the input columns of ``frame`` (plus ``target`` if present) with canonical dtypes.

    Raises InputFormatError naming the missing columns, or the column whose values do not fit.
    """
    missing = missing_columns(frame.columns)
    if missing:
        raise InputFormatError(f"missing columns: {', '.join(missing)}")
    columns = list(INPUT_COLUMNS) + ([TARGET_COLUMN] if TARGET_COLUMN in frame.columns else [])
    typed = {}
    for column in columns:
        try:
            typed[column] = frame[column].astype(DTYPES.get(column, "int64"))  # the target is int64 too
        except (TypeError, ValueError) as error:
            raise InputFormatError(f"column {column!r} has values of the wrong type: {error}") from error
    return pd.DataFrame(typed, index=frame.index)


def from_columns(columns: Mapping[str, Sequence[object]]) -> pd.DataFrame:
    """A frame in ``coerce``'s dtypes straight from valid Python values per input column."""
    return pd.DataFrame({name: pd.array(columns[name], dtype=DTYPES[name]) for name in INPUT_COLUMNS})


def arrays_from(columns: Mapping[str, Sequence[object]]) -> dict[str, np.ndarray]:
    """The input columns as numpy arrays of ``ARRAY_DTYPES``, straight from valid Python values: a
    batch without the fixed cost of building a DataFrame, which a small batch would feel. The features
    read them as they read a frame's columns, to the same values."""
    return {name: np.array(columns[name], dtype=ARRAY_DTYPES[name]) for name in INPUT_COLUMNS}


def read_csv(path: str | Path) -> pd.DataFrame:
    """Read a CSV (optionally gzipped) in the input format, checking the header before the body."""
    header = pd.read_csv(path, nrows=0).columns
    missing = missing_columns(header)
    if missing:
        raise InputFormatError(f"{path}: missing columns: {', '.join(missing)}")
    return coerce(pd.read_csv(path))


def transaction_times(table: Table, errors: str = "raise") -> np.ndarray:
    """``transaction_time`` as datetime64; with ``errors="coerce"``, NaT where it is no real date.

    The one parse of the column for features, validation, ordering and splits. A column of plain
    times (``YYYY-MM-DD HH:MM[:SS]``), all real, is parsed by numpy, without pandas' fixed cost per
    call; any other column by pandas' ISO 8601 parser, which decides what is no real date (numpy
    refuses a column holding one). The two agree on every plain time (a unit test goes through each
    field's range). Without pandas' cache of repeated strings: nearly every time in a batch differs.
    """
    texts = table["transaction_time"]
    plain = _plain_times(texts)
    if plain is not None:
        return plain
    return pd.to_datetime(texts, format="ISO8601", errors=errors, cache=False).to_numpy()


def _plain_times(texts: pd.Series | np.ndarray) -> np.ndarray | None:
    """The times parsed by numpy, or None if any is missing, not plain or not a real date. The shape
    is checked in C for the whole column: a Python regex per row cost a large batch more than pandas."""
    values = texts.tolist()
    try:
        shapes = pa.array(values, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # not a string (a missing value read as NaN)
        return None
    if shapes.null_count or not pc.all(pc.match_substring_regex(shapes, _PLAIN_TIME)).as_py():
        return None
    try:
        return np.array(values, dtype="datetime64[us]")
    except ValueError:  # no real date (2019-02-30)
        return None


def customer_ids(frame: Table) -> np.ndarray:
    """Stable customer id per row: a hash of (name_1, name_2, street, post_code).

    Used as the Kafka message key, so one customer's transactions stay ordered in one partition.
    """
    columns = (frame[column].tolist() for column in CUSTOMER_COLUMNS)
    return np.array([_customer_id(*key) for key in zip(*columns, strict=True)], dtype=object)


@functools.lru_cache(maxsize=1 << 16)
def _customer_id(name_1: str, name_2: str, street: str, post_code: int) -> str:
    key = f"{name_1}\x1f{name_2}\x1f{street}\x1f{post_code}"
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()
