"""Files that `fraudstream send` and the UI's upload must refuse, each with the words of its reason."""

from __future__ import annotations

from tests.unit.transactions import synthetic


def good_csv(rows: int = 30) -> str:
    """A small file in the input format (synthetic rows, no target)."""
    frame = synthetic(customers=3, days=10).drop(columns="target").head(rows)
    return frame.to_csv(index=False)


def _replace(column: str, rows: list[int], value: str) -> bytes:
    """``good_csv`` with ``column`` set to ``value`` (as written) on the given data rows (0-based)."""
    header, *lines = good_csv().splitlines()
    position = header.split(",").index(column)
    for row in rows:
        fields = lines[row].split(",")
        fields[position] = value
        lines[row] = ",".join(fields)
    return ("\n".join([header, *lines]) + "\n").encode()


# name -> (content, words the one-line refusal must contain)
BAD_FILES: dict[str, tuple[bytes, tuple[str, ...]]] = {
    "empty.csv": (b"", ("empty file",)),
    "header-only.csv": (good_csv().splitlines()[0].encode() + b"\n", ("no rows",)),
    "wrong-columns.csv": (
        b"transaction_time,amount,merch\n2019-01-01 00:00,1.0,shop\n",
        ("missing columns: cat_id, name_1",),
    ),
    "bad-date.csv": (_replace("transaction_time", [2], "yesterday"), ("transaction_time", "row 4")),
    "bad-amount.csv": (_replace("amount", [0, 9], "12;50"), ("amount not a number", "rows 2, 11")),
    "empty-fields.csv": (
        _replace("cat_id", list(range(1, 9)), ""),
        ("cat_id empty", "rows 3, 4, 5, 6, 7 and 3 more (8 rows)"),
    ),
    "negative-amount.csv": (_replace("amount", [5], "-3.5"), ("amount outside [0, 10000000] on row 7",)),
    "not-text.csv": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", ("binary data",)),
}
