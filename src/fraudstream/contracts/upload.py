"""The one check of a transactions CSV before any of it is sent: `fraudstream send` and the UI's upload.

A file is refused as a whole, with one line saying why, when it is not UTF-8 text, not a CSV, empty,
lacks input columns, has no rows, or has a value the detector would send to the dead-letter topic: an
empty field, a number that is not one or is out of the wire contract's bounds, a time that is not a
real date, a text that is too long. The bounds are read from ``messages.TransactionData``, the
detector's own schema, so the two checks cannot drift apart. Rows are numbered as in a spreadsheet,
the header being row 1.

This module sits beside ``schema`` rather than in it because it reads ``messages``, which imports
``schema``.
"""

from __future__ import annotations

import codecs
import gzip
import io
import re
import warnings
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd

from fraudstream.contracts.messages import TransactionData
from fraudstream.contracts.schema import (
    INPUT_COLUMNS,
    STRING_COLUMNS,
    InputFormatError,
    coerce,
    missing_columns,
    transaction_times,
)

ROWS_NAMED = 5  # row numbers named per problem; the count says how many more
SNIFF_BYTES = 8192
BOMS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}
PROBLEMS_NAMED = 4  # kinds of problem named (a column and what is wrong in it); the rest are counted
_FIELDS = {field.name: field.type for field in msgspec.inspect.type_info(TransactionData).fields}
_DATE_FORMAT = "(YYYY-MM-DD HH:MM, seconds optional)"


def read_transactions(source: Path | str | bytes) -> pd.DataFrame:
    """The rows of a CSV file (a path, gzip allowed, or its bytes) in ``schema.coerce``'s dtypes.

    Raises ``InputFormatError`` with a one-line reason when the file cannot be sent as a whole.
    """
    problem = _not_utf8_text(_head(source))
    if problem:
        raise InputFormatError(problem)
    frame = _parse(io.BytesIO(source) if isinstance(source, bytes) else source)
    missing = missing_columns(frame.columns)
    if missing:
        raise InputFormatError(f"missing columns: {', '.join(missing)}")
    if frame.empty:
        raise InputFormatError("no rows: the file has a header only")
    problems = [problem for column in INPUT_COLUMNS for problem in _problems(frame, column)]
    if problems:
        more = f"; and {len(problems) - PROBLEMS_NAMED} more" if len(problems) > PROBLEMS_NAMED else ""
        raise InputFormatError(f"bad values: {'; '.join(problems[:PROBLEMS_NAMED])}{more}")
    return coerce(frame)


def _head(source: Path | str | bytes) -> bytes:
    """The start of the file, for the encoding check (a gzip file is read decompressed)."""
    if isinstance(source, bytes):
        return source[:SNIFF_BYTES]
    path = Path(source)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as file:
            return file.read(SNIFF_BYTES)
    except OSError as error:
        raise InputFormatError(f"cannot read the file: {error}") from error


def _not_utf8_text(data: bytes) -> str | None:
    """Why ``data`` is not UTF-8 text (binary, another encoding), or None when it is."""
    for bom, encoding in BOMS.items():
        if data.startswith(bom):
            return f"the file is {encoding} text: save it as CSV in UTF-8"
    sample = data[: SNIFF_BYTES - SNIFF_BYTES % 4]
    if b"\x00" in sample:
        if any(_is_text(sample, encoding) for encoding in ("utf-16-le", "utf-16-be")):
            return "the file is UTF-16 text: save it as CSV in UTF-8"
        return "not a CSV file: it holds binary data (a spreadsheet, an archive or an image?)"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start >= len(data) - 3 and error.reason == "unexpected end of data":
            return None  # a character cut by the sample's end, not a wrong encoding
        byte = data[error.start]
        return (
            f"not UTF-8 text (byte 0x{byte:02x} at position {error.start}, as Latin-1 or Windows-1252 "
            "would write it): save it as CSV in UTF-8"
        )
    return None


def _is_text(sample: bytes, encoding: str) -> bool:
    try:
        text = sample.decode(encoding)
    except UnicodeDecodeError:
        return False
    return all(character.isprintable() or character in "\r\n\t" for character in text)


def _parse(source: io.BytesIO | Path | str) -> pd.DataFrame:
    """Texts as written (only an empty field is missing), numbers by pandas' parser as ever; a row
    with more fields than the header is refused (pandas would drop the extra ones with a warning),
    an empty last field on every row (a trailing comma) is not an extra field."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                source,
                dtype=dict.fromkeys(STRING_COLUMNS, object),
                keep_default_na=False,
                na_values=[""],
                index_col=False,
                encoding="utf-8",
            )
    except pd.errors.EmptyDataError as error:
        raise InputFormatError("empty file: no header and no rows") from error
    except UnicodeDecodeError as error:
        raise InputFormatError(f"not UTF-8 text (byte {error.start}): not a CSV file?") from error
    except OSError as error:  # e.g. a .gz file that is not gzip
        raise InputFormatError(f"cannot read the file: {error}") from error
    except pd.errors.ParserWarning as error:
        raise InputFormatError("not a readable CSV: a row has more fields than the header") from error
    except (pd.errors.ParserError, ValueError) as error:
        reason = " ".join(str(error).split())
        raise InputFormatError(f"not a readable CSV: {reason}") from error


def _problems(frame: pd.DataFrame, column: str) -> list[str]:
    """What is wrong in ``column``, one phrase per kind of problem, naming its rows."""
    values, kind = frame[column], _FIELDS[column]
    empty = values.isna().to_numpy()
    if isinstance(kind, msgspec.inspect.StrType):
        bad = _text_problems(frame, column, kind)
    else:
        bad = _number_problems(values, kind)
    found = [(f"{column} empty", empty)] + [(f"{column} {what}", mask & ~empty) for what, mask in bad]
    return [f"{what} on {_rows(mask)}" for what, mask in found if mask.any()]


def _text_problems(
    frame: pd.DataFrame, column: str, kind: msgspec.inspect.StrType
) -> list[tuple[str, np.ndarray]]:
    values = frame[column].fillna("")
    bad = []
    if kind.max_length is not None:
        too_long = (values.str.len() > kind.max_length).to_numpy()
        bad.append((f"longer than {kind.max_length} characters", too_long))
    if kind.pattern is not None:  # the time: its pattern (re.search, as msgspec), then a real date
        pattern = re.compile(kind.pattern)
        unmatched = np.array([pattern.search(value) is None for value in values.tolist()], dtype=bool)
        unreal = np.isnat(transaction_times(frame[[column]], errors="coerce"))
        bad.append((f"not a real date and time {_DATE_FORMAT}", unmatched | unreal))
    return bad


def _number_problems(
    values: pd.Series, kind: msgspec.inspect.IntType | msgspec.inspect.FloatType
) -> list[tuple[str, np.ndarray]]:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    number = ~np.isnan(numbers)
    with np.errstate(invalid="ignore"):
        outside = number & ~((numbers >= kind.ge) & (numbers <= kind.le))
        fractional = number & (np.mod(numbers, 1) != 0)
    bad = [("not a number", ~number), (f"outside [{kind.ge:.15g}, {kind.le:.15g}]", outside)]
    if isinstance(kind, msgspec.inspect.IntType):
        bad.append(("not a whole number", fractional))
    return bad


def _rows(mask: np.ndarray) -> str:
    """``row 3``, ``rows 3, 7``, ``rows 3, 7, 8, 9, 12 and 4 more (9 rows)``: header = row 1."""
    numbers = (np.flatnonzero(mask) + 2).tolist()
    named = ", ".join(str(number) for number in numbers[:ROWS_NAMED])
    if len(numbers) == 1:
        return f"row {named}"
    if len(numbers) <= ROWS_NAMED:
        return f"rows {named}"
    return f"rows {named} and {len(numbers) - ROWS_NAMED} more ({len(numbers)} rows)"
