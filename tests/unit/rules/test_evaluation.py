"""Vectorised evaluation against the row-by-row reference, on random rules over random batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudstream.rules.compiler import FACTORIZE_FROM, BatchColumns, compile_rule, evaluate
from fraudstream.rules.types import check
from tests.unit.rules import reference

NUMBERS = ("amount", "amount_to_mean", "n_1h", "score", "hour")
TEXTS = ("cat_id", "us_state")
CATEGORIES = ("food", "gas", "shopping_net", "home")
STATES = ("CA", "NY", "TX")
CONSTANTS = (0, 1, 2, -1, 0.5, 3)


def random_batch(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    """Columns with ties, zeros (for divisions) and missing ratios, as the detector's features have."""
    ratio = rng.choice([0.0, 0.5, 1.0, 2.0, 3.0], rows)
    ratio[rng.random(rows) < 0.25] = np.nan
    return {
        "amount": rng.choice([0.0, 1.0, 2.0, 3.0, 0.5], rows),
        "amount_to_mean": ratio,
        "n_1h": rng.integers(0, 4, rows),
        "score": rng.choice([0.0, 0.5, 1.0], rows),
        "hour": rng.integers(0, 3, rows).astype(np.int32),
        "cat_id": rng.choice(CATEGORIES, rows).astype(object),
        "us_state": pd.Series(rng.choice(STATES, rows), dtype="str"),
        "is_weekend": rng.random(rows) < 0.5,
    }


class RuleMaker:
    """Random rule texts from a small grammar covering every construct of the language."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def number(self, depth: int) -> str:
        choice = self.rng.integers(5 if depth > 0 else 2)
        if choice == 0:
            return str(self.pick(CONSTANTS))
        if choice == 1:
            return self.pick(NUMBERS)
        if choice == 2:
            return f"-{self.number(depth - 1)}"
        if choice == 3:
            return f"({self.number(depth - 1)})"
        return f"{self.number(depth - 1)} {self.pick('+-*/')} {self.number(depth - 1)}"

    def text(self) -> str:
        if self.rng.random() < 0.7:
            return self.pick(TEXTS)
        return f"'{self.pick(CATEGORIES + STATES)}'"

    def condition(self, depth: int) -> str:
        choice = self.rng.integers(10 if depth > 0 else 7)
        op = self.pick(("=", "==", "!=", "<", "<=", ">", ">="))
        negated = "not " if self.rng.random() < 0.4 else ""
        if choice == 0:
            return f"{self.number(2)} {op} {self.number(2)}"
        if choice == 1:
            return f"{self.text()} {op} {self.text()}"
        if choice == 2:
            items = ", ".join(str(self.pick(CONSTANTS)) for _ in range(self.rng.integers(1, 4)))
            return f"{self.number(1)} {negated}in [{items}]"
        if choice == 3:
            items = ", ".join(f"'{self.pick(CATEGORIES + STATES)}'" for _ in range(self.rng.integers(1, 4)))
            return f"{self.text()} {negated}in [{items}]"
        if choice == 4:
            return f"{self.number(1)} {negated}between {self.number(1)} and {self.number(1)}"
        if choice == 5:
            return f"{self.text()} {negated}between '{self.pick(CATEGORIES)}' and {self.text()}"
        if choice == 6:
            return self.pick(("is_weekend", "true", "false", "is_weekend != false", "is_weekend in [true]"))
        if choice == 7:
            return f"not ({self.condition(depth - 1)})"
        joined = f" {self.pick(('and', 'or'))} ".join(
            self.condition(depth - 1) for _ in range(2 + choice - 8)
        )
        return f"({joined})"


def reference_mask(text: str, batch: dict[str, np.ndarray]) -> np.ndarray:
    tree = check(text).tree
    rows = pd.DataFrame({name: np.asarray(column) for name, column in batch.items()}).to_dict("records")
    return np.array([reference.matches(tree, row) for row in rows], dtype=bool)


def vectorised_mask(text: str, batch: dict[str, np.ndarray], rows: int) -> np.ndarray:
    return evaluate(compile_rule(check(text)), BatchColumns([batch], rows))


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_evaluation_equals_the_row_by_row_reference(seed):
    rng = np.random.default_rng(seed)
    maker = RuleMaker(rng)
    for index in range(60):
        rows = int(rng.integers(0, 40) if index % 3 else rng.integers(FACTORIZE_FROM, FACTORIZE_FROM + 100))
        batch = random_batch(rng, rows)
        text = maker.condition(3)

        assert vectorised_mask(text, batch, rows).tolist() == reference_mask(text, batch).tolist(), text


BATCH = {
    "amount": np.array([10.0, 0.0, 50.0, 5.0]),
    "amount_to_mean": np.array([np.nan, 2.0, 6.0, np.nan]),
    "n_1h": np.array([0, 3, 1, 2]),
    "cat_id": np.array(["food", "shopping_net", "misc_net", "food"], dtype=object),
    "is_weekend": np.array([True, False, True, False]),
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("amount_to_mean > 3", [False, False, True, False]),
        ("amount_to_mean != 2", [False, False, True, False]),  # missing is not "different"
        ("not (amount_to_mean > 3)", [False, True, False, False]),  # nor does not make it true
        ("not (amount_to_mean > 3 and amount > 1)", [False, True, False, False]),
        ("amount_to_mean > 3 or amount > 1", [True, False, True, True]),
        ("amount_to_mean not in [2]", [False, False, True, False]),
        ("amount_to_mean not between 1 and 3", [False, False, True, False]),
        ("amount / n_1h > 1", [False, False, True, True]),  # 10/0 is missing, not infinity
        ("not (amount / n_1h <= 1)", [False, False, True, True]),
        ("amount between 5 and 10", [True, False, False, True]),
        ("cat_id in ['food', 'misc_net'] and is_weekend", [True, False, True, False]),
        ("cat_id >= 'm' and not is_weekend", [False, True, False, False]),
        ("1 = 1", [True, True, True, True]),
        ("1 / 0 = 1 / 0", [False, False, False, False]),
    ],
)
def test_missing_values_and_division_by_zero_never_match(text, expected):
    assert vectorised_mask(text, BATCH, 4).tolist() == expected
    assert reference_mask(text, BATCH).tolist() == expected


def test_a_column_is_converted_once_per_batch_for_every_rule():
    columns = BatchColumns([BATCH], 4)
    texts, numbers = columns.text("cat_id"), columns.number("amount")

    evaluate(compile_rule(check("cat_id = 'food' and amount > 1")), columns)

    assert columns.text("cat_id") is texts and columns.number("amount") is numbers


def test_a_column_of_the_wrong_length_raises_rather_than_broadcasting():
    columns = BatchColumns([{"amount": np.ones(3)}], 4)

    with pytest.raises(ValueError, match=r"column 'amount' has shape \(3,\), expected \(4,\)"):
        evaluate(compile_rule(check("amount > 0")), columns)
