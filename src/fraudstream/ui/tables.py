"""The results view's tables, shaped from the frames of ``queries`` (the jsonb columns unpacked)."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from fraudstream.contracts.schema import INPUT_COLUMNS

INPUT_SUMMARY = {"amount": "amount", "merch": "merchant", "cat_id": "category"}
LABEL_NAMES = {0: "legitimate", 1: "fraud"}
PERSONAL_FIELDS = ("name_1", "name_2", "street")
# Text a spreadsheet would run as a formula (CSV injection), OWASP's list: = + - @ tab CR first.
# Only text is checked: a number (a negative amount) is never a formula.
FORMULA = re.compile(r"^[=+\-@\t\r]")
MASK = "•••"


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
    inputs = inputs.map(neutralise)
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
    return pd.DataFrame({"field": fields, "value": [str(neutralise(row[column])) for column in fields]})


def neutralise(value: Any) -> Any:
    """``value``, with a leading ``'`` when it is text a spreadsheet would run as a formula.

    Tables are shown with st.dataframe / st.table, whose toolbar downloads them as CSV: a merchant
    name sent through Kafka as ``=cmd|' /C calc'!A0`` must open in a spreadsheet as text.
    """
    return f"'{value}" if isinstance(value, str) and FORMULA.match(value) else value


def mask_personal(transaction: dict[str, Any] | None) -> dict[str, Any] | None:
    """The stored input row with the card holder's names and street hidden (what a viewer sees)."""
    if transaction is None:
        return None
    return {key: MASK if key in PERSONAL_FIELDS else value for key, value in transaction.items()}
