"""One scored transaction as the pages show it: score and model, action and rules, input fields, top
reasons."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from fraudstream.ui import charts, tables


def transaction_details(row: Mapping) -> None:
    """Two columns: the score (model in its help) over the input fields, and the reasons chart."""
    fields, reasons = st.columns(2)
    fields.metric("Score", f"{row['score']:.3f}", help=f"model {row['model_version'] or 'unknown'}")
    if "decision" in row:
        matched = tables.matched_rules(row["rules"]) or "none"
        action = row["decision"] if isinstance(row["decision"], str) else "not decided"
        fields.markdown(f"Action: **{action}**; rules matched: {matched}")
    inputs = tables.input_fields(row["transaction"])
    if inputs.empty:
        fields.caption("The input of this transaction was not stored.")
    else:
        fields.table(inputs, hide_index=True)
    ranked = tables.reasons_frame(row["reasons"])
    reasons.markdown("**Top reasons** (contribution to the score)")
    if ranked.empty:
        reasons.caption("No reasons were stored for this transaction.")
    else:
        reasons.altair_chart(charts.reasons_chart(ranked))
