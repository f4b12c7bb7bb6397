"""Review queue: flagged transactions without a decision; the analyst marks them fraud or legitimate.

A decision is published to the ``labels`` topic and shown at once as "recorded (pending)", then as
"recorded" once the labels consumer has written it to ``fraud_labels``.
"""

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from fraudstream.config import Settings
from fraudstream.contracts.messages import LabelMessage
from fraudstream.pipeline.postgres import DatabaseUnavailable
from fraudstream.ui import tables
from fraudstream.ui.details import transaction_details
from fraudstream.ui.review import (
    QUEUE_LIMIT,
    WAITING_CAP,
    DecisionFailed,
    Filters,
    Queue,
    decide,
    landed,
    load_categories,
    load_queue,
    load_story,
    parse_transaction_id,
)

PERIODS = {
    "last hour": timedelta(hours=1),
    "last 24 hours": timedelta(days=1),
    "last 7 days": timedelta(days=7),
}
PENDING_REFRESH_S = 2
SELECTION = "queue_selection"
ORDERS = {"newest": "newest first", "score": "highest score first"}
QUEUE_COLUMNS = {
    "scored at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm:ss"),
    "score": st.column_config.NumberColumn(format="%.3f"),
    "amount": st.column_config.NumberColumn(format="%.2f"),
}

settings = Settings()
analyst = st.sidebar.text_input(
    "Analyst", key="analyst", help="your name, recorded with each decision"
).strip()
pending: dict[str, LabelMessage] = st.session_state.setdefault("pending_labels", {})
st.title("Review queue")


def decision_buttons(transaction_ids: list[str], key: str, selection: str | None = None) -> None:
    """A note and the two decisions, applied to every transaction of ``transaction_ids``, or with a
    ``selection`` (a multiselect's key) to the transactions it holds when a button is clicked."""
    st.text_input("Note (optional)", key=f"note-{key}", max_chars=2000)
    fraud, legitimate, _ = st.columns([1, 1, 3])
    count = f" ({len(transaction_ids)})" if len(transaction_ids) > 1 else ""
    for column, label in ((fraud, 1), (legitimate, 0)):
        column.button(
            f"Mark {tables.LABEL_NAMES[label]}{count}",
            key=f"mark-{label}-{key}",
            disabled=not (analyst and transaction_ids),
            type="primary" if label else "secondary",
            on_click=record,
            args=(transaction_ids, selection, label, key),
        )
    if not analyst:
        st.caption("Enter your name as **Analyst** in the sidebar to record decisions.")
    if error := st.session_state.pop(f"error-{key}", None):
        st.error(error)


def record(transaction_ids: list[str], selection: str | None, label: int, key: str) -> None:
    """The buttons' callback: runs before the page, so it may reset the note and the selection.

    The selection and the analyst are read as the browser sent them with the click, not as the run
    that drew the buttons saw them: a change made just before the click may not have been drawn yet.
    """
    chosen = list(st.session_state.get(selection) or []) if selection else transaction_ids
    author = (st.session_state.get("analyst") or "").strip()
    if not (chosen and author):
        st.session_state[f"error-{key}"] = "Not recorded: select a transaction and enter your name first."
        return
    try:
        labels = decide(settings, chosen, label, author, st.session_state.get(f"note-{key}") or "")
    except DecisionFailed as error:
        st.session_state[f"error-{key}"] = f"Not recorded: {error}"
        return
    pending.update((str(message.label_id), message) for message in labels)
    st.session_state[f"note-{key}"] = ""
    if selection:
        st.session_state[selection] = []


def search_section() -> None:
    text = st.text_input("Search by transaction id", key="search", placeholder="a transaction id (UUID)")
    if not text.strip():
        return
    try:
        transaction_id = parse_transaction_id(text)
    except ValueError as error:
        st.error(str(error))
        return
    story = load_story(settings, transaction_id)
    if story.score is None:
        st.info(
            "No score for this transaction yet"
            + (": its labels arrived first." if len(story.history) else ".")
        )
    else:
        flag = "flagged as fraud" if story.score["fraud_flag"] else "not flagged"
        st.markdown(
            f"**{story.transaction_id}**, {flag}, scored {story.score['scored_at']:%Y-%m-%d %H:%M:%S}"
        )
        transaction_details(story.score)
    if len(story.history):
        current = story.history.iloc[0]
        st.markdown(f"Decision: **{tables.decision(current['label'], current['author'])}**; its history:")
        st.dataframe(story.history, hide_index=True)
    decision_buttons([story.transaction_id], "search")


def filters_row() -> Filters:
    period, score, category, amount, order = st.columns([2, 3, 3, 3, 2])
    chosen = period.selectbox("Scored", [*PERIODS, "any time"], index=1, key="period")
    since = datetime.now(UTC) - PERIODS[chosen] if chosen in PERIODS else Filters.since
    low, high = score.slider("Score", 0.0, 1.0, (0.0, 1.0), step=0.01, key="score_range")
    picked = category.multiselect("Category", load_categories(settings, since), key="categories")
    low_amount, high_amount = amount.columns(2)
    min_amount = low_amount.number_input("Amount from", min_value=0.0, value=None, key="min_amount")
    max_amount = high_amount.number_input("to", min_value=0.0, value=None, key="max_amount")
    ordering = order.radio("Order", list(ORDERS), key="order", format_func=ORDERS.get)
    return Filters(since, low, high, picked, min_amount, max_amount, ordering)


def queue_section() -> None:
    filters = filters_row()
    queue = load_queue(settings, filters, [str(m.transaction_id) for m in pending.values()])
    st.subheader(f"Waiting for a decision: {waiting(queue)}")
    table = tables.fraud_table(queue.rows)
    table["model"] = queue.rows["model_version"].to_numpy()
    st.dataframe(table, hide_index=True, column_config=QUEUE_COLUMNS)
    if queue.rows.empty:
        st.caption("Nothing to review under these filters.")
        return
    selected = pick(queue.rows["transaction_id"].tolist())
    for tid in selected:
        with st.expander(tid, expanded=len(selected) == 1):
            transaction_details(queue.rows.loc[queue.rows["transaction_id"] == tid].iloc[0])
    decision_buttons(selected, "queue", SELECTION)


def waiting(queue: Queue) -> str:
    """How many wait: all of them when the page holds them, else the page's share of the count (which
    stops at WAITING_CAP)."""
    if queue.waiting <= QUEUE_LIMIT:
        return f"{queue.waiting:,}"
    counted = f"more than {WAITING_CAP:,}" if queue.more else f"{queue.waiting:,}"
    return f"the first {QUEUE_LIMIT} of {counted}"


def pick(ids: list[str]) -> list[str]:
    """The analyst's pick among the queue's ``ids``: changed only by the analyst, or by a decision.

    The page never writes the widget's value on a rerun: a written value is sent back to the browser,
    which then clears what the analyst is typing in the widget to find a transaction, so the row under
    the pointer is no longer that transaction. Without a "Select all" row, one stray click cannot put
    the whole queue under the next decision. Streamlit itself drops the picked transactions that left
    the queue; the analyst is told which.
    """
    left = [tid for tid in st.session_state.get(SELECTION) or [] if tid not in ids]
    if left:
        st.info(f"Left the queue and your selection (decided, or outside the filters): {', '.join(left)}")
    return st.multiselect("Transactions to decide (one or several)", ids, key=SELECTION, select_all=False)


def decisions_section() -> None:
    """The decisions of this session, "recorded" once in fraud_labels, else "recorded (pending)";
    re-read every few seconds while one is pending."""
    try:
        written = landed(settings, list(pending))
    except DatabaseUnavailable as error:  # a timed rerun of this fragment is outside the page's try
        st.error(f"{error}. Your decisions will show once the database is back.")
        return
    rows = [
        {
            "transaction id": str(m.transaction_id),
            "decision": tables.decision(m.label, m.author),
            "note": m.note,
            "decided at": m.at,
            "state": f"recorded {written[label_id]:%H:%M:%S}"
            if label_id in written
            else "recorded (pending)",
        }
        for label_id, m in reversed(pending.items())
    ]
    st.subheader("Your decisions")
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def unlanded() -> bool:
    return len(landed(settings, list(pending))) < len(pending)


try:
    search_section()
    queue_section()
    if pending:
        st.fragment(decisions_section, run_every=PENDING_REFRESH_S if unlanded() else None)()
except DatabaseUnavailable as error:
    st.error(f"{error}. The queue will show once the database is back.")
