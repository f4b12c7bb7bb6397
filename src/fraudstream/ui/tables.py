"""The results view's tables, shaped from the frames of ``queries`` (the jsonb columns unpacked)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fraudstream.contracts.schema import INPUT_COLUMNS

INPUT_SUMMARY = {"amount": "amount", "merch": "merchant", "cat_id": "category"}
LABEL_NAMES = {0: "legitimate", 1: "fraud"}


def reasons_frame(reasons: list[dict[str, Any]] | None) -> pd.DataFrame:
    """The stored reasons as (feature, contribution), largest contribution first."""
    frame = pd.DataFrame(reasons or [], columns=["feature", "contribution"])
    return frame.sort_values("contribution", ascending=False, ignore_index=True)


def fraud_table(frauds: pd.DataFrame) -> pd.DataFrame:
    """One line per alert: when, which, its score, a summary of its input, its top reason, its action
    (the decision of the rules and the model) and the rules that matched (when the frame has
    ``decision`` and ``rules``), and the analyst's current label with who gave it (when it has ``label``
    and ``author``)."""
    inputs = pd.DataFrame([row or {} for row in frauds["transaction"]], columns=list(INPUT_SUMMARY))
    top = [_top_reason(reasons) for reasons in frauds["reasons"]]
    table = pd.DataFrame(
        {
            "scored at": frauds["scored_at"].to_numpy(),
            "transaction id": frauds["transaction_id"].to_numpy(),
            "score": frauds["score"].to_numpy(),
        }
    )
    if "decision" in frauds.columns:
        table["action"] = frauds["decision"].fillna("not decided").to_numpy()
        table["rules"] = [matched_rules(rules) for rules in frauds["rules"]]
    table = pd.concat([table, inputs.rename(columns=INPUT_SUMMARY)], axis=1)
    table["top reason"] = top
    if "label" in frauds.columns:
        decisions = zip(frauds["label"], frauds["author"], strict=True)
        table["label"] = [decision(label, author) or "not reviewed" for label, author in decisions]
    return table


def matched_rules(rules: list[dict[str, Any]] | None) -> str:
    """ "big-net v2, night v1"; empty when no rule matched (or the rules were not applied)."""
    if not isinstance(rules, list):  # NULL: scored before the rules were applied
        return ""
    return ", ".join(f"{rule['id']} v{rule['version']}" for rule in rules)


def decision(label: object, author: object) -> str | None:
    """ "fraud (ann)", "legitimate (chargeback import by bob)"...; None when not decided."""
    if label is None or pd.isna(label):
        return None
    return f"{LABEL_NAMES[int(label)]} ({author})"


def _top_reason(reasons: list[dict[str, Any]] | None) -> str | None:
    ranked = reasons_frame(reasons)
    return None if ranked.empty else ranked.at[0, "feature"]


def input_fields(transaction: dict[str, Any] | None) -> pd.DataFrame:
    """The stored input row as (field, value) in the input format's column order; empty if not stored."""
    row = transaction or {}
    fields = [column for column in INPUT_COLUMNS if column in row]
    return pd.DataFrame({"field": fields, "value": [str(row[column]) for column in fields]})
