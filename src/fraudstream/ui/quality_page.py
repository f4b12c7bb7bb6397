"""Live quality: alerts, reviews and the model's precision and recall as estimated from the labels."""

from datetime import UTC, datetime, timedelta

import streamlit as st

from fraudstream.config import Settings
from fraudstream.pipeline.postgres import DatabaseUnavailable
from fraudstream.pipeline.quality import DEFAULT_DAYS, Quality, load_quality
from fraudstream.ui import charts
from fraudstream.ui.queries import read

DAILY_COLUMNS = {
    "day": st.column_config.DateColumn(format="YYYY-MM-DD"),
    "labelled_frauds": st.column_config.NumberColumn("labelled fraud"),
    "top_k_frauds": st.column_config.NumberColumn("fraud cards in top k"),
    "over_budget": st.column_config.CheckboxColumn("over budget"),
    "precision": st.column_config.NumberColumn(format="%.3f"),
    "recall": st.column_config.NumberColumn(format="%.3f"),
    "card_precision_at_k": st.column_config.NumberColumn("card precision@k", format="%.3f"),
}

settings = Settings()
budget = settings.alert_budget
st.title("Live quality")
today = datetime.now(UTC).date()
window = st.date_input(
    "Days (UTC, by time scored)", (today - timedelta(days=DEFAULT_DAYS - 1), today), key="quality_window"
)
st.button("Refresh")


def share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def figures_row(quality: Quality) -> None:
    window = quality.window
    alerts, per_day, reviewed, precision, recall, top_k = st.columns(6)
    alerts.metric("Alerts raised", f"{window['alerts']:,}")
    over = int(quality.daily["over_budget"].sum())
    per_day.metric(
        "Alerts per day",
        "—" if window["alerts_per_day"] is None else f"{window['alerts_per_day']:,.1f}",
        delta=f"{over} day(s) over the budget of {budget}" if over else None,
        delta_color="inverse",
        help=f"budget {budget}/day (FRAUDSTREAM_ALERT_BUDGET)",
    )
    reviewed.metric("Reviewed / confirmed", f"{window['reviewed']:,} / {window['confirmed']:,}")
    precision.metric("Precision (estimated)", share(window["precision"]))
    recall.metric("Recall (estimated)", share(window["recall"]))
    top_k.metric(f"Card precision@{budget}", share(window["card_precision_at_k"]))


def estimates_caption(quality: Quality) -> None:
    window = quality.window
    st.caption(
        f"Estimated from {window['labelled']:,} labelled transaction(s) of {window['transactions']:,} scored"
        f" in the window ({window['labelled_frauds']:,} labelled fraud). Precision: the share of the"
        f" {window['reviewed']:,} reviewed alerts labelled fraud. Recall: the share of the labelled frauds"
        " that were flagged; frauds nobody labelled are unknown, so it is an upper bound. Card precision@k:"
        f" each day, the share of the {budget} cards with the highest score that have a transaction labelled"
        " fraud; unlabelled cards count as legitimate (a lower bound); the window's figure is the mean of"
        f" its days. {quality.unscored_labels:,} label(s) wait for their transaction's score."
    )


def show(quality: Quality) -> None:
    figures_row(quality)
    estimates_caption(quality)
    if quality.daily.empty:
        st.info("No transaction was scored in these days.")
        return
    counts, rates = st.columns(2)
    counts.subheader("Alerts per day")
    counts.altair_chart(charts.daily_counts_chart(quality.daily, budget))
    rates.subheader("Precision, recall, card precision@k")
    rates.altair_chart(charts.daily_rates_chart(quality.daily))
    st.subheader("Per day")
    st.dataframe(quality.daily, hide_index=True, column_config=DAILY_COLUMNS)


if len(window) != 2:
    st.info("Choose the last day of the window.")
    st.stop()
try:
    show(read(settings, lambda connection: load_quality(connection, *window, budget)))
except DatabaseUnavailable as error:
    st.error(f"{error}. The figures will show once the database is back.")
