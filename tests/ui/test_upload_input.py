"""Hostile or odd uploads are refused with a clear message, and formulas never reach a downloaded table."""

from __future__ import annotations

import io
import zipfile

import pandas as pd
import pytest

from fraudstream.ops.loadgen import transactions
from fraudstream.ui import tables
from fraudstream.ui.uploads import Status, read_upload
from tests.ui.test_upload_view import rows_of, upload

INJECTION = "=cmd|' /C calc'!A0"


@pytest.fixture
def frame() -> pd.DataFrame:
    return transactions(4, customer_count=4, seed=3)


def csv_bytes(frame: pd.DataFrame, encoding: str = "utf-8") -> bytes:
    return frame.to_csv(index=False).encode(encoding)


def test_a_clean_file_is_uploaded(frame):
    upload = read_upload("clean.csv", csv_bytes(frame))

    assert (upload.status, upload.rows) == (Status.UPLOADED, 4)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_are_refused_naming_the_encoding(frame, encoding):
    upload = read_upload("wide.csv", csv_bytes(frame, encoding))

    assert upload.status is Status.REFUSED and upload.frame is None
    assert upload.message.startswith(f"the file is {encoding[:6].upper()} text: save it as CSV in UTF-8")
    assert upload.message.endswith("nothing will be sent")


def test_a_latin1_file_is_refused_naming_the_byte(frame):
    frame.loc[1, "name_1"] = "Ingrid Müller"

    upload = read_upload("latin.csv", csv_bytes(frame, "latin-1"))

    assert upload.status is Status.REFUSED
    assert upload.message.startswith("not UTF-8 text (byte 0xfc at position")


def test_the_same_names_in_utf8_are_accepted(frame):
    frame.loc[1, "name_1"] = "Ingrid Müller"

    upload = read_upload("utf8.csv", csv_bytes(frame))

    assert upload.status is Status.UPLOADED and upload.frame.loc[1, "name_1"] == "Ingrid Müller"


def test_binary_files_are_refused(frame):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("data.csv", csv_bytes(frame))
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)

    for name, data in (("data.xlsx", archive.getvalue()), ("picture.csv", png)):
        upload = read_upload(name, data)
        assert upload.status is Status.REFUSED, name
        assert upload.message.startswith("not a CSV file: it holds binary data"), name


@pytest.mark.parametrize(
    "payload", [INJECTION, "+1+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "-2+3+cmd"]
)
def test_cells_that_a_spreadsheet_would_run_are_refused(frame, payload):
    frame.loc[2, "merch"] = payload

    upload = read_upload("formula.csv", csv_bytes(frame))

    assert upload.status is Status.REFUSED and upload.frame is None
    assert upload.message.startswith("cells that a spreadsheet would run as formulas: row 4 merch")


def test_negative_numbers_and_inner_signs_are_not_formulas(frame):
    frame.loc[0, "merch"] = "fraud_Kub-Smith = Co +1"
    frame.loc[1, "lon"] = -120.5

    assert read_upload("fine.csv", csv_bytes(frame)).status is Status.UPLOADED


def test_the_message_names_the_first_cells_and_counts_the_rest(frame):
    frame["jobs"] = INJECTION

    message = read_upload("many.csv", csv_bytes(frame)).message

    assert message.startswith(
        "cells that a spreadsheet would run as formulas: row 2 jobs, row 3 jobs, row 4 jobs and 1 more"
    )


def test_tables_shown_and_downloadable_neutralise_formulas_that_came_through_kafka():
    transaction = {"merch": INJECTION, "cat_id": "+shopping", "amount": -3.5, "name_1": "Ann"}
    frauds = pd.DataFrame(
        {
            "scored_at": [pd.Timestamp("2026-01-01")],
            "transaction_id": ["00000000-0000-4000-8000-000000000000"],
            "score": [0.9],
            "reasons": [None],
            "transaction": [transaction],
        }
    )

    summary = tables.fraud_table(frauds).iloc[0]
    fields = dict(tables.input_fields(transaction).to_numpy())

    assert (summary["merchant"], summary["category"], summary["amount"]) == (
        f"'{INJECTION}",
        "'+shopping",
        -3.5,
    )
    assert fields == {"name_1": "Ann", "merch": f"'{INJECTION}", "cat_id": "'+shopping", "amount": "-3.5"}


def test_the_upload_page_refuses_an_odd_file_and_offers_no_send(page, nothing_env, frame):
    app = upload(page, ("latin.csv", "Müller".encode("latin-1"), "text/csv"))

    assert not app.exception
    assert rows_of(app) == ["latin.csv", "—", "refused"]
    [error] = app.error
    assert error.value.startswith("latin.csv: not UTF-8 text")
    assert [button.disabled for button in app.button if button.label == "Send"] == [True]
