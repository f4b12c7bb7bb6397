"""Reading and validating uploaded CSV files (no Kafka needed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fraudstream.ui import uploads
from fraudstream.ui.uploads import Status, Upload, progress_text, read_upload, settle_interrupted
from tests.bad_files import BAD_FILES


def test_a_file_in_the_input_format_is_uploaded_with_its_rows(new_small: Path):
    upload = read_upload("new_small.csv", new_small.read_bytes())

    assert (upload.status, upload.rows, upload.message) == (Status.UPLOADED, 90, "")


def test_a_file_without_input_columns_is_refused_naming_them():
    upload = read_upload("bad.csv", b"transaction_time,amount,merch\n2019-01-01 00:00,1.0,shop\n")

    assert upload.status is Status.REFUSED and upload.frame is None
    assert upload.message.startswith("missing columns: cat_id, name_1, name_2, gender")
    assert upload.message.endswith("nothing will be sent")


def test_a_file_with_values_of_the_wrong_type_is_refused(new_small: Path):
    frame = pd.read_csv(new_small).head(2).astype({"post_code": "str"})
    frame.loc[1, "post_code"] = "not-a-number"

    upload = read_upload("typo.csv", frame.to_csv(index=False).encode())

    assert upload.status is Status.REFUSED
    assert upload.message == "bad values: post_code not a number on row 3; nothing will be sent"


@pytest.mark.parametrize("name", BAD_FILES)
def test_each_bad_file_is_refused_with_its_reason(name: str):
    content, words = BAD_FILES[name]

    upload = read_upload(name, content)

    assert (upload.status, upload.frame, upload.rows) == (Status.REFUSED, None, None)
    assert all(word in upload.message for word in words) and upload.message.endswith("nothing will be sent")


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(monkeypatch):
    monkeypatch.setattr(uploads, "MAX_UPLOAD_MB", 1)

    upload = read_upload("big.csv", b"x" * (2 * 1024 * 1024))

    assert upload.status is Status.REFUSED and "over the 1 MB limit" in upload.message


def test_progress_text_shows_rows_and_rate():
    assert progress_text(1500, 3000, 0.5) == "1,500 / 3,000 rows, 3,000 rows/s"


def test_a_send_cut_short_by_a_rerun_is_marked_failed():
    cut, done = Upload("a.csv", None, Status.SENDING), Upload("b.csv", None, Status.SENT)

    settle_interrupted([cut, done])

    assert (cut.status, done.status) == (Status.FAILED, Status.SENT)
    assert "part of the rows may have been sent" in cut.message
