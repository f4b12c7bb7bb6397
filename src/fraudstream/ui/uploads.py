"""Uploaded CSV files: reading and validating them, and sending their rows to Kafka.

A file is checked completely when it is uploaded (its size here, then ``contracts.upload``, the check
`fraudstream send` makes too), so a file that is not in the input format, or has a row the detector
would refuse, is refused with the reason before anything could be sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pandas as pd
from confluent_kafka import KafkaException

from fraudstream.config import Settings
from fraudstream.contracts.schema import InputFormatError
from fraudstream.contracts.upload import read_transactions
from fraudstream.pipeline.producer import Progress, SendReport, TransactionProducer
from fraudstream.ui.kafka_view import KafkaUnavailable, require_topic
from fraudstream.ui.tables import FORMULA

MAX_UPLOAD_MB = 100
SHOWN_CELLS = 3


class Status(StrEnum):
    UPLOADED = "uploaded"
    REFUSED = "refused"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class SendFailed(RuntimeError):
    """The rows could not be delivered to Kafka; the message says why."""


@dataclass
class Upload:
    """One uploaded file as the upload view lists it; ``frame`` is None when the file was refused."""

    name: str
    frame: pd.DataFrame | None
    status: Status
    message: str = ""

    @property
    def rows(self) -> int | None:
        return None if self.frame is None else len(self.frame)


def settle_interrupted(uploads: list[Upload]) -> None:
    """Mark as failed the uploads still "sending" from an earlier run of the page.

    A send runs inside one script run; any click during it makes Streamlit stop that run, so a
    "sending" left over at the start of the next run was cut short after sending part of its rows.
    """
    for upload in uploads:
        if upload.status is Status.SENDING:
            upload.status = Status.FAILED
            upload.message = "interrupted by another action; part of the rows may have been sent"


def read_upload(name: str, data: bytes) -> Upload:
    """Parse and validate an uploaded CSV; a refused file carries the reason in ``message``."""
    if len(data) > MAX_UPLOAD_MB * 1024 * 1024:
        return _refused(name, f"{len(data) / 2**20:.0f} MB is over the {MAX_UPLOAD_MB} MB limit")
    try:
        frame = read_transactions(data)
        formulas = formula_cells(frame)
        if formulas:
            return _refused(name, f"cells that a spreadsheet would run as formulas: {formulas}")
    except InputFormatError as error:
        return _refused(name, str(error))
    return Upload(name=name, frame=frame, status=Status.UPLOADED)


def formula_cells(frame: pd.DataFrame) -> str:
    """The first text cells (row numbers as in the file, header = 1) that start like a formula; "" if none."""
    found = []
    for column in frame.select_dtypes(include=["object", "string"]).columns:
        hits = frame[column].astype("string").str.match(FORMULA).fillna(False)
        found += [(int(index), column) for index in frame.index[hits.to_numpy()]]
    shown = ", ".join(f"row {index + 2} {column}" for index, column in sorted(found)[:SHOWN_CELLS])
    more = f" and {len(found) - SHOWN_CELLS} more" if len(found) > SHOWN_CELLS else ""
    return shown + more


def _refused(name: str, reason: str) -> Upload:
    return Upload(name=name, frame=None, status=Status.REFUSED, message=f"{reason}; nothing will be sent")


def send_upload(settings: Settings, frame: pd.DataFrame, progress: Progress) -> SendReport:
    """Send every row with a fresh transaction id; raises SendFailed if Kafka is down or did not ack.

    Kafka is checked first: the producer itself would wait for its full delivery timeout.
    """
    try:
        require_topic(settings, settings.topic_transactions)
        return TransactionProducer(settings).send(frame, progress=progress)
    except KafkaUnavailable as error:
        raise SendFailed(str(error)) from error
    except KafkaException as error:
        raise SendFailed(f"Kafka did not acknowledge the rows: {error}") from error


def progress_text(done: int, total: int, seconds: float) -> str:
    rate = done / seconds if seconds > 0 else 0.0
    return f"{done:,} / {total:,} rows, {rate:,.0f} rows/s"
