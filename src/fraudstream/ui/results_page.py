"""Results view (the seed's second view): recent frauds and the score histogram, plus live totals,
throughput and the details of a flagged transaction, optionally refreshed as the stream goes."""

import streamlit as st

from fraudstream.config import Settings
from fraudstream.ml.model import Threshold, read_metadata, resolve_threshold
from fraudstream.pipeline.postgres import DatabaseUnavailable
from fraudstream.ui import charts, tables
from fraudstream.ui.details import transaction_details
from fraudstream.ui.queries import (
    HISTOGRAM_ROWS,
    RECENT_FRAUDS,
    THROUGHPUT_BUCKET_S,
    THROUGHPUT_WINDOW_S,
    Results,
    load_results,
)

REFRESH_S = 5
FRAUD_COLUMNS = {
    "scored at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
    "score": st.column_config.NumberColumn(format="%.3f"),
    "amount": st.column_config.NumberColumn(format="%.2f"),
}

settings = Settings()
st.title("Results")
show, refresh = st.columns([1, 3], vertical_alignment="center")
if show.button("Show results", type="primary"):
    st.session_state["results_shown"] = True
auto_refresh = refresh.toggle(f"Auto-refresh every {REFRESH_S} s", key="auto_refresh")


def totals_row(results: Results) -> None:
    scored, flagged, rate, blocked = st.columns(4)
    scored.metric("Scored", f"{results.totals.scored:,}")
    flagged.metric("Flagged as fraud", f"{results.totals.flagged:,}", help="by the model")
    rate.metric("Flag rate", f"{results.totals.flag_rate:.2%}")
    blocked.metric("Blocked", f"{results.totals.blocked:,}", help="by a block rule")


def frauds_section(results: Results) -> None:
    st.subheader(f"Last {RECENT_FRAUDS} alerts")
    st.caption(
        "Flagged by the model, or blocked or sent to review by a rule. *Action*: the decision of the rules"
        " and the model; *rules*: the rule versions that matched; *label*: the analyst's."
    )
    st.dataframe(tables.fraud_table(results.frauds), hide_index=True, column_config=FRAUD_COLUMNS)
    if results.frauds.empty:
        st.caption("No alert yet.")
        return
    chosen = st.selectbox("Details of", results.frauds["transaction_id"], key="fraud_detail")
    detail = results.frauds.loc[results.frauds["transaction_id"] == chosen].iloc[0]
    transaction_details(detail)


def threshold_in_use() -> Threshold | None:
    """The detector's threshold, by the same rule from the same settings; None if the model is unreadable."""
    try:
        return resolve_threshold(settings.threshold, read_metadata(settings.model_path))
    except (OSError, ValueError) as error:
        st.warning(f"No threshold marked: the model at {settings.model_path} is unreadable ({error}).")
        return None


def charts_row(results: Results) -> None:
    histogram, throughput = st.columns(2)
    histogram.subheader(f"Score histogram (last {HISTOGRAM_ROWS})")
    if results.scores.empty:
        histogram.info("No scores yet.")
    else:
        threshold = threshold_in_use()
        histogram.altair_chart(charts.score_histogram(results.scores, threshold and threshold.value))
        if threshold is not None:
            histogram.caption(f"Threshold {threshold.value:g} (dashed line), from the {threshold.source}.")
    throughput.subheader(f"Throughput (last {THROUGHPUT_WINDOW_S // 60} min)")
    throughput.altair_chart(charts.throughput_chart(results.throughput, THROUGHPUT_BUCKET_S))


def show_results() -> None:
    try:
        results = load_results(settings)
    except DatabaseUnavailable as error:
        st.error(f"{error}. Results will show once the database is back.")
        return
    totals_row(results)
    frauds_section(results)
    charts_row(results)


if st.session_state.get("results_shown") or auto_refresh:
    st.fragment(show_results, run_every=REFRESH_S if auto_refresh else None)()
