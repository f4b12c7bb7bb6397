"""The check of a file before it is sent: one line per refusal, naming the rows; good files unchanged."""

from __future__ import annotations

import gzip
import io
import uuid
from pathlib import Path

import pandas as pd
import pytest

from fraudstream.contracts import schema
from fraudstream.contracts.messages import decode_transaction, encoder
from fraudstream.contracts.upload import read_transactions
from tests.bad_files import BAD_FILES, good_csv


def test_a_good_file_gives_the_frame_the_input_format_reader_gives(tmp_path: Path) -> None:
    text = good_csv()

    frame = read_transactions(text.encode())

    pd.testing.assert_frame_equal(frame, schema.coerce(pd.read_csv(io.StringIO(text))), check_exact=True)
    path = tmp_path / "good.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    pd.testing.assert_frame_equal(read_transactions(path), frame, check_exact=True)


def test_every_row_it_accepts_is_a_message_the_detector_accepts() -> None:
    frame = read_transactions(good_csv().encode())

    for row in frame.to_dict("records"):
        decode_transaction(encoder.encode({"transaction_id": uuid.uuid4(), "data": row}))


@pytest.mark.parametrize("name", BAD_FILES)
def test_a_bad_file_is_refused_with_one_line_saying_why(name: str) -> None:
    content, words = BAD_FILES[name]

    with pytest.raises(schema.InputFormatError) as refused:
        read_transactions(content)

    message = str(refused.value)
    assert "\n" not in message and "Traceback" not in message
    assert all(word in message for word in words), message


def test_rows_with_bad_values_in_several_columns_are_named_per_column() -> None:
    header, *lines = good_csv().splitlines()
    columns = header.split(",")
    first = lines[0].split(",")
    first[columns.index("post_code")] = "1.5"
    first[columns.index("lat")] = "91"
    first[columns.index("jobs")] = "x" * 201
    lines[0] = ",".join(first)
    lines[3] = lines[3].replace(lines[3].split(",")[0], "2019-02-30 10:00", 1)

    with pytest.raises(schema.InputFormatError) as refused:
        read_transactions("\n".join([header, *lines]).encode())

    assert str(refused.value) == (
        "bad values: transaction_time not a real date and time (YYYY-MM-DD HH:MM, seconds optional) on row 5;"
        " post_code not a whole number on row 2; lat outside [-90, 90] on row 2; jobs longer than 200"
        " characters on row 2"
    )


def test_a_row_longer_than_the_header_is_refused_but_a_trailing_comma_is_not() -> None:
    header, *lines = good_csv().splitlines()

    with pytest.raises(schema.InputFormatError, match="more fields than the header"):
        read_transactions("\n".join([header, lines[0] + ",extra", *lines[1:]]).encode())
    trailing = read_transactions("\n".join([header, *(line + "," for line in lines)]).encode())
    assert len(trailing) == len(lines)


def test_texts_are_kept_as_written() -> None:
    header, *lines = good_csv().splitlines()
    state = header.split(",").index("us_state")
    fields = lines[0].split(",")
    fields[state] = "NA"
    lines[0] = ",".join(fields)

    frame = read_transactions("\n".join([header, *lines]).encode())

    assert frame.loc[0, "us_state"] == "NA"  # pandas' default reader made it NaN, then the text "nan"


def test_more_than_four_problems_are_counted() -> None:
    header, *lines = good_csv().splitlines()
    lines[0] = ",".join("" for _ in header.split(","))

    with pytest.raises(schema.InputFormatError) as refused:
        read_transactions("\n".join([header, *lines]).encode())

    assert str(refused.value).endswith("and 13 more")
