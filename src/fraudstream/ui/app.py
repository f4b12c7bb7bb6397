"""Streamlit interface: upload transactions to Kafka, look at the scores in PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pandas as pd
import streamlit as st

from fraudstream.config import Settings
from fraudstream.producer import TransactionProducer
from fraudstream.schema import InputFormatError, coerce

settings = Settings()
st.set_page_config(page_title="fraudstream", layout="wide")
st.title("fraudstream")

uploaded = st.file_uploader("Upload a CSV of transactions", type=["csv"])
if uploaded is not None and st.button("Send"):
    try:
        frame = coerce(pd.read_csv(uploaded))
    except InputFormatError as error:
        st.error(str(error))
    else:
        bar = st.progress(0.0)
        report = TransactionProducer(settings).send(frame, progress=lambda done, total: bar.progress(done / total))
        st.success(f"sent {report.sent} transactions")


async def _results() -> pd.DataFrame:
    connection = await asyncpg.connect(settings.pg_dsn)
    try:
        rows = await connection.fetch(
            "SELECT transaction_id, score, fraud_flag, scored_at FROM fraud_scores ORDER BY scored_at DESC LIMIT 100"
        )
    finally:
        await connection.close()
    return pd.DataFrame([dict(row) for row in rows], columns=["transaction_id", "score", "fraud_flag", "scored_at"])


if st.button("Show results"):
    results = asyncio.run(_results())
    st.subheader("Last 10 fraud transactions")
    st.dataframe(results[results.fraud_flag == 1].head(10))
    st.subheader("Score histogram (last 100)")
    st.bar_chart(results.score.value_counts(bins=20, sort=False))
