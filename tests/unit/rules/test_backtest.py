"""The backtest over stored transactions with known answers: matches per day, beyond the model, labels."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from fraudstream.rules.backtest import BacktestError, backtest
from fraudstream.rules.rule import Rule
from tests.unit.transactions import transactions

SINCE, UNTIL = datetime(2020, 1, 2), datetime(2020, 1, 4)
ROWS = [
    (0, "2020-01-01 23:30", "food_dining", 10.0),  # warm-up only: before the period
    (0, "2020-01-02 00:10", "food_dining", 20.0),  # n_1h = 1, thanks to the warm-up row
    (0, "2020-01-02 00:20", "shopping_net", 900.0),  # flagged by the model
    (1, "2020-01-02 10:00", "grocery_pos", 30.0),
    (1, "2020-01-03 09:00", "shopping_net", 700.0),
    (2, "2020-01-03 12:00", "home", 15.0),
    (2, "2020-01-04 00:00", "home", 600.0),  # after the period
]


def rule(expression: str, action: str = "block") -> Rule:
    return Rule(
        id="test",
        name="test",
        expression=expression,
        action=action,
        author="ana",
        version=1,
        enabled=False,
        created_at=datetime(2026, 11, 28, tzinfo=UTC),
    )


def stored() -> pd.DataFrame:
    """fraud_scores rows as the loader gives them, in no particular order."""
    inputs = transactions(ROWS)
    frame = pd.DataFrame(
        {
            "transaction_id": [f"t{index}" for index in range(len(ROWS))],
            "transaction": inputs.to_dict("records"),
            "score": [0.01, 0.02, 0.97, 0.03, 0.4, 0.01, 0.2],
            "fraud_flag": [0, 0, 1, 0, 0, 0, 0],
        }
    )
    return frame.iloc[[4, 6, 0, 2, 5, 1, 3]].reset_index(drop=True)


LABELS = pd.DataFrame({"transaction_id": ["t1", "t2", "t4", "t3"], "label": [1, 1, 0, 1]})


def test_matches_per_day_and_beyond_the_model_with_features_warmed_up_before_the_period():
    report = backtest(rule("amount > 500 or n_1h >= 1"), stored(), SINCE, UNTIL, LABELS)

    assert (report.transactions, report.matches, report.flagged, report.beyond_model) == (5, 3, 1, 2)
    assert report.also_flagged == 1
    assert report.per_day.to_dict("list") == {
        "day": [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-03")],
        "transactions": [3, 2],
        "matches": [2, 1],
        "beyond_model": [1, 1],
        "also_flagged": [1, 0],
    }
    labels = report.labels
    assert (labels.labelled, labels.frauds, labels.frauds_beyond_model) == (3, 2, 1)
    assert labels.precision == pytest.approx(2 / 3)
    assert report.notes == ()


def test_without_labels_the_figures_are_absent_and_the_reason_is_kept():
    report = backtest(rule("score > 0.3"), stored(), SINCE, UNTIL, None, notes=("no labels yet",))

    assert (report.matches, report.beyond_model, report.labels) == (2, 1, None)
    assert report.notes == ("no labels yet",)


def test_rules_on_lifetime_features_are_said_to_be_approximate():
    report = backtest(rule("amount_to_mean > 2 and n_total >= 1"), stored(), SINCE, UNTIL)

    assert report.matches == 2  # 900 after 10 and 20; 700 after 30
    assert report.notes[0].startswith("amount_to_mean, n_total count a customer's whole history")


def test_an_empty_period():
    empty = backtest(rule("amount > 1"), stored().iloc[:0], SINCE, UNTIL)

    assert (empty.transactions, empty.matches, len(empty.per_day)) == (0, 0, 0)


def test_stored_rows_that_are_not_valid_inputs_are_left_out_and_counted():
    damaged = stored()
    damaged.at[0, "transaction"] = {"amount": 1.0}  # t4, the 700 on 2020-01-03
    damaged.at[1, "transaction"] = {**damaged.at[1, "transaction"], "lat": 500.0}  # t6, after the period

    report = backtest(rule("amount > 500 or n_1h >= 1"), damaged, SINCE, UNTIL)

    assert (report.transactions, report.matches) == (4, 2)
    assert report.notes == ("2 stored transactions are not valid inputs and are left out",)


def test_a_rule_failing_on_the_stored_data_is_an_error():
    with pytest.raises(BacktestError, match="the rule failed on the stored transactions"):
        backtest(rule("score > 0.5"), stored().assign(score=["x"] * len(ROWS)), SINCE, UNTIL)
