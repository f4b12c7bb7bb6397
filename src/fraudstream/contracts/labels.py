"""Label files (chargebacks and other late decisions): ``transaction_id,label[,at,source,note]``.

A file is checked whole before anything is sent: every bad row is reported with its line number in the
file (the header is line 1) and the reason, and a file with any bad row is refused as a whole.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from fraudstream.contracts.messages import LabelMessage, new_label

REQUIRED_COLUMNS = ("transaction_id", "label")
OPTIONAL_COLUMNS = ("at", "source", "note")
MAX_REPORTED = 20


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class LabelFileError(ValueError):
    """A label file that cannot be imported; ``errors`` lists its bad rows (empty for a bad header)."""

    def __init__(self, message: str, errors: list[RowError] | None = None) -> None:
        self.errors = errors or []
        shown = "; ".join(str(error) for error in self.errors[:MAX_REPORTED])
        more = len(self.errors) - MAX_REPORTED
        super().__init__(
            message + (f": {shown}" if shown else "") + (f"; and {more} more" if more > 0 else "")
        )


@dataclass(frozen=True)
class Defaults:
    """What a row does not say: its source, the author of the import, and the time of a row without ``at``."""

    source: str
    author: str
    at: datetime


def read_label_file(text: str, defaults: Defaults) -> list[LabelMessage]:
    """Every row of a label file as a label message; raises LabelFileError naming every bad row."""
    reader = csv.DictReader(io.StringIO(text))
    _check_header(reader.fieldnames)
    labels, errors = [], []
    for row in reader:
        try:
            labels.append(parse_row(row, defaults))
        except ValueError as error:
            errors.append(RowError(reader.line_num, str(error)))
    if errors:
        raise LabelFileError(f"{len(errors)} bad row(s), nothing sent", errors)
    if not labels:
        raise LabelFileError("the file has no rows")
    return labels


def _check_header(columns: list[str] | None) -> None:
    if not columns:
        raise LabelFileError("the file is empty (no header)")
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    unknown = [column for column in columns if column not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        problems = [f"missing columns: {', '.join(missing)}"] if missing else []
        problems += [f"unknown columns: {', '.join(unknown)}"] if unknown else []
        raise LabelFileError(f"{'; '.join(problems)} (expected transaction_id,label[,at,source,note])")


def parse_row(row: dict[str, str | None], defaults: Defaults) -> LabelMessage:
    """One row as a label message; raises ValueError saying what is wrong with it."""
    if None in row:
        raise ValueError("more fields than columns")
    transaction_id = _uuid((row.get("transaction_id") or "").strip())
    label = _label((row.get("label") or "").strip())
    at = _time((row.get("at") or "").strip(), defaults.at)
    source = (row.get("source") or "").strip() or defaults.source
    note = (row.get("note") or "").strip() or None
    return new_label(transaction_id, label, source, defaults.author, at, note)


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ValueError(f"transaction_id {text!r} is not a UUID") from None


def _label(text: str) -> int:
    if text not in ("0", "1"):
        raise ValueError(f"label {text!r} is not 0 (legitimate) or 1 (fraud)")
    return int(text)


def _time(text: str, default: datetime) -> datetime:
    """An ISO 8601 time; one without a zone is taken as UTC."""
    if not text:
        return default
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"at {text!r} is not an ISO 8601 time (e.g. 2026-01-31 14:05 or ...T14:05Z)"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
