"""The UI's charts, as Altair specs built from the frames the pages read."""

from __future__ import annotations

import altair as alt
import pandas as pd

SCORE_BINS = 20


def score_histogram(scores: pd.Series, threshold: float | None) -> alt.LayerChart:
    """Histogram of ``scores`` on [0, 1] with the decision threshold, when known, as a vertical rule."""
    bars = (
        alt.Chart(scores.to_frame("score"))
        .mark_bar()
        .encode(
            x=alt.X("score:Q", bin=alt.Bin(extent=[0, 1], maxbins=SCORE_BINS), title="score"),
            y=alt.Y("count():Q", title="transactions"),
        )
    )
    if threshold is None:
        return alt.layer(bars)
    rule = (
        alt.Chart(pd.DataFrame({"threshold": [threshold]}))
        .mark_rule(color="red", strokeDash=[4, 4])
        .encode(x="threshold:Q")
    )
    return alt.layer(bars, rule)


def throughput_chart(throughput: pd.DataFrame, bucket_s: int) -> alt.Chart:
    """Rows scored per bucket over time (the last bucket is the one still filling)."""
    return (
        alt.Chart(throughput)
        .mark_bar()
        .encode(
            x=alt.X("bucket:T", title="scored at", axis=alt.Axis(format="%H:%M")),
            y=alt.Y("rows:Q", title=f"rows per {bucket_s} s"),
            tooltip=[alt.Tooltip("bucket:T", format="%H:%M:%S"), "rows:Q"],
        )
    )


def reasons_chart(reasons: pd.DataFrame) -> alt.Chart:
    """Horizontal bars of the reasons' contributions, largest first."""
    return (
        alt.Chart(reasons)
        .mark_bar()
        .encode(
            x=alt.X("contribution:Q"),
            y=alt.Y("feature:N", sort="-x", title=None),
            color=alt.condition("datum.contribution > 0", alt.value("#d62728"), alt.value("#1f77b4")),
        )
    )


def daily_counts_chart(daily: pd.DataFrame, budget: int) -> alt.LayerChart:
    """Alerts raised, reviewed and confirmed per day, with the alert budget as a horizontal rule."""
    counts = daily.melt(id_vars="day", value_vars=["alerts", "reviewed", "confirmed"], var_name="figure")
    lines = (
        alt.Chart(counts)
        .mark_line(point=True)
        .encode(
            x=alt.X("day:T", title="day (UTC)", axis=alt.Axis(format="%b %d")),
            y=alt.Y("value:Q", title="transactions"),
            color=alt.Color("figure:N", sort=["alerts", "reviewed", "confirmed"]),
            tooltip=[alt.Tooltip("day:T", format="%Y-%m-%d"), "figure:N", "value:Q"],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"budget": [budget]}))
        .mark_rule(color="red", strokeDash=[4, 4])
        .encode(y="budget:Q", tooltip=["budget:Q"])
    )
    return alt.layer(lines, rule)


def daily_rates_chart(daily: pd.DataFrame) -> alt.Chart:
    """Precision, recall estimate and card precision at k per day, on [0, 1]; days without labels
    for a figure have no point for it."""
    rates = daily.melt(
        id_vars="day", value_vars=["precision", "recall", "card_precision_at_k"], var_name="figure"
    ).dropna(subset=["value"])
    return (
        alt.Chart(rates)
        .mark_line(point=True)
        .encode(
            x=alt.X("day:T", title="day (UTC)", axis=alt.Axis(format="%b %d")),
            y=alt.Y("value:Q", title="share", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("figure:N", sort=["precision", "recall", "card_precision_at_k"]),
            tooltip=[
                alt.Tooltip("day:T", format="%Y-%m-%d"),
                "figure:N",
                alt.Tooltip("value:Q", format=".3f"),
            ],
        )
    )


def matches_chart(per_day: pd.DataFrame) -> alt.Chart:
    """A backtest's matches per day, the part the model did not flag darker."""
    kinds = {"beyond_model": "not flagged by the model", "also_flagged": "flagged by the model too"}
    long = (
        per_day[["day", *kinds]]
        .rename(columns=kinds)
        .melt(id_vars="day", var_name="kind", value_name="matches")
    )
    return (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("day:T", title="day (transaction time)", axis=alt.Axis(format="%Y-%m-%d")),
            y=alt.Y("matches:Q", title="matches", stack=True),
            color=alt.Color("kind:N", title=None),
            tooltip=[alt.Tooltip("day:T", format="%Y-%m-%d"), "kind:N", "matches:Q"],
        )
    )


def psi_chart(drift: pd.DataFrame, warning: float) -> alt.LayerChart:
    """PSI by feature, a bar per window, with the warning level as a vertical rule."""
    bars = (
        alt.Chart(drift)
        .mark_bar()
        .encode(
            x=alt.X("psi:Q", title="PSI against the training data"),
            y=alt.Y("feature:N", sort="-x", title=None),
            yOffset="window:N",
            color=alt.Color("window:N", title="window"),
            tooltip=["feature:N", "window:N", alt.Tooltip("psi:Q", format=".3f")],
        )
    )
    rule = (
        alt.Chart(pd.DataFrame({"warning": [warning]}))
        .mark_rule(color="red", strokeDash=[4, 4])
        .encode(x="warning:Q")
    )
    return alt.layer(bars, rule)
