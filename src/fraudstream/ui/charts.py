"""The results view's charts, as Altair specs built from the frames of ``queries``."""

from __future__ import annotations

import altair as alt
import pandas as pd

SCORE_BINS = 20


def score_histogram(scores: pd.Series, threshold: float) -> alt.LayerChart:
    """Histogram of ``scores`` on [0, 1] with the decision threshold as a vertical rule."""
    bars = (
        alt.Chart(scores.to_frame("score"))
        .mark_bar()
        .encode(
            x=alt.X("score:Q", bin=alt.Bin(extent=[0, 1], maxbins=SCORE_BINS), title="score"),
            y=alt.Y("count():Q", title="transactions"),
        )
    )
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
