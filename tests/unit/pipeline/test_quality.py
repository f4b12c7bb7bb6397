"""The live-quality figures from daily counts, on a hand-made table with known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fraudstream.pipeline.quality import window_totals, with_rates

COUNTS = pd.DataFrame(
    {
        "day": pd.to_datetime(["2026-03-01", "2026-03-02", "2026-03-03"]),
        "transactions": [1000, 800, 500],
        "alerts": [120, 40, 0],
        "reviewed": [100, 40, 0],
        "confirmed": [60, 10, 0],
        "labelled": [110, 45, 2],
        "labelled_frauds": [80, 12, 2],  # frauds found by review or chargeback
        "top_k_frauds": [30, 8, 0],
    }
)
BUDGET = 100


def test_daily_precision_recall_and_card_precision():
    daily = with_rates(COUNTS, BUDGET)

    assert daily["precision"].tolist()[:2] == [0.6, 0.25]
    assert daily["recall"].tolist() == [0.75, 10 / 12, 0.0]
    assert daily["card_precision_at_k"].tolist() == [0.3, 0.08, 0.0]
    assert daily["over_budget"].tolist() == [True, False, False]
    assert math.isnan(daily["precision"].iloc[2])  # no alert reviewed: no estimate, not 0


def test_window_figures_come_from_the_sums_and_the_mean_card_precision():
    window = window_totals(with_rates(COUNTS, BUDGET), BUDGET)

    assert (window["alerts"], window["reviewed"], window["confirmed"]) == (160, 140, 70)
    assert window["alerts_per_day"] == pytest.approx(160 / 3)
    assert window["precision"] == 0.5
    assert window["recall"] == pytest.approx(70 / 94)
    assert window["card_precision_at_k"] == pytest.approx((0.3 + 0.08 + 0.0) / 3)
    assert (window["labelled"], window["days"], window["budget"]) == (157, 3, 100)


def test_an_empty_window_has_counts_of_zero_and_no_estimates():
    window = window_totals(with_rates(COUNTS.iloc[0:0], BUDGET), BUDGET)

    assert window["alerts"] == 0 and window["days"] == 0
    assert window["precision"] is window["recall"] is window["card_precision_at_k"] is None
    assert window["alerts_per_day"] is None
