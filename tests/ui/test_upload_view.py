"""The upload view under AppTest: refused files, sending to the real Kafka, and Kafka being down."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fraudstream.config import Settings
from fraudstream.pipeline import kafka
from tests.ui.conftest import Page

BAD_CSV = ("bad.csv", b"transaction_time,amount,merch\n2019-01-01 00:00,1.0,shop\n", "text/csv")


def upload(page: Page, *files: tuple[str, bytes, str]) -> AppTest:
    app = page("upload_page.py").run()
    app.file_uploader[0].set_value(list(files)).run()
    return app


def rows_of(app: AppTest) -> list[str]:
    """The cells of the file list (name, rows, status per file), after the header."""
    cells = [markdown.value for markdown in app.markdown]
    return cells[cells.index("**status**") + 1 :]


def send_buttons(app: AppTest) -> list:
    return [button for button in app.button if button.label == "Send"]


def transactions_end(settings: Settings) -> int:
    with kafka.consumer(settings, "ui-test") as reader:
        return sum(kafka.end_offsets(reader, settings.topic_transactions, 10).values())


def test_a_file_in_the_wrong_format_is_refused_naming_the_missing_columns(page, nothing_env, new_small: Path):
    app = upload(page, BAD_CSV, ("new_small.csv", new_small.read_bytes(), "text/csv"))

    assert not app.exception
    assert rows_of(app) == ["bad.csv", "—", "refused", "new_small.csv", "90", "uploaded"]
    [error] = app.error
    assert error.value.startswith("bad.csv: missing columns: cat_id, name_1, name_2, gender")
    assert "nothing will be sent" in error.value
    assert [button.disabled for button in send_buttons(app)] == [True, False]


def test_sending_while_kafka_is_down_fails_with_a_message(page, nothing_env, new_small: Path):
    app = upload(page, ("new_small.csv", new_small.read_bytes(), "text/csv"))

    send_buttons(app)[0].click().run()

    assert not app.exception
    assert rows_of(app)[-1] == "failed"
    assert "is unavailable" in app.error[0].value and "can be sent again" in app.error[0].value


@pytest.mark.integration
def test_send_streams_every_row_to_the_transactions_topic(page, stack_env, new_small: Path):
    before = transactions_end(stack_env)
    app = upload(page, ("new_small.csv", new_small.read_bytes(), "text/csv"))

    send_buttons(app)[0].click().run()

    assert not app.exception and not app.error
    assert rows_of(app)[-1] == "sent"
    assert app.success[0].value.startswith("new_small.csv: sent 90 rows in")
    assert transactions_end(stack_env) == before + 90
