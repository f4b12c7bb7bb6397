"""A rule replayed over stored transactions: what it would have matched, per day, beyond the model.

The stored inputs are replayed in transaction-time order through a fresh ``FeatureEngine`` (the
detector's), from ``WARM_UP`` before the period so that the windowed features (counts and sums over
1 h / 24 h / 7 d) inside the period are exactly the stream's. The stored ``score`` and ``fraud_flag``
are the model's, as scored then. The period and its days are in transaction time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec
import numpy as np
import pandas as pd

from fraudstream.contracts import schema
from fraudstream.contracts.messages import TransactionData
from fraudstream.ml.features import LIFETIME_FEATURES, FeatureEngine
from fraudstream.rules.compiler import compile_rule, evaluate
from fraudstream.rules.rule import Rule
from fraudstream.rules.ruleset import rule_columns
from fraudstream.rules.types import Expression, check

WARM_UP = timedelta(days=7)
CHUNK_ROWS = 20_000
STORED_COLUMNS = ("transaction_id", "transaction", "score", "fraud_flag")

Progress = Callable[[int, int], None]


class BacktestError(ValueError):
    """A rule that fails on the stored transactions; the message says why."""


@dataclass(frozen=True)
class LabelFigures:
    """The rule's matches in the period that carry a label (``current_labels``)."""

    labelled: int
    frauds: int
    frauds_beyond_model: int  # labelled fraud, matched, not flagged by the model

    @property
    def precision(self) -> float | None:
        return self.frauds / self.labelled if self.labelled else None


@dataclass(frozen=True)
class BacktestReport:
    rule: Rule
    since: datetime
    until: datetime
    transactions: int
    matches: int
    flagged: int  # by the model, in the period
    beyond_model: int  # matched and not flagged: the alerts a block/review rule adds
    per_day: pd.DataFrame  # day, transactions, matches, beyond_model, also_flagged
    labels: LabelFigures | None
    notes: tuple[str, ...]

    @property
    def also_flagged(self) -> int:
        """Matched and flagged by the model too: the alerts an allow rule would take away."""
        return self.matches - self.beyond_model


def warm_up_start(since: datetime) -> datetime:
    return since - WARM_UP


def backtest(
    rule: Rule,
    stored: pd.DataFrame,
    since: datetime,
    until: datetime,
    labels: pd.DataFrame | None = None,
    notes: tuple[str, ...] = (),
    progress: Progress | None = None,
) -> BacktestReport:
    """Replay ``stored`` (``STORED_COLUMNS``: ``transaction`` is the input row as a dict) and evaluate
    ``rule`` on the rows of [since, until). ``labels`` (transaction_id, label) gives the label figures;
    None means there are no labels to use (the reason is among ``notes``)."""
    expression = check(rule.expression)
    stored, inputs, invalid = _valid_inputs(stored)
    if invalid:
        notes = (*notes, f"{invalid:,} stored transactions are not valid inputs and are left out")
    times = schema.transaction_times(inputs)
    matched = _replay(expression, inputs, times, stored["score"].to_numpy(), progress)
    in_period = (times >= np.datetime64(since)) & (times < np.datetime64(until))
    flags = stored["fraud_flag"].to_numpy().astype(bool)
    rows = pd.DataFrame(
        {
            "transaction_id": stored["transaction_id"].astype(str).to_numpy(),
            "day": times.astype("datetime64[D]"),
            "matched": matched,
            "beyond_model": matched & ~flags,
            "flagged": flags,
        }
    )[in_period]
    per_day = (
        rows.groupby("day")
        .agg(
            transactions=("matched", "size"), matches=("matched", "sum"), beyond_model=("beyond_model", "sum")
        )
        .reset_index()
    )
    per_day["also_flagged"] = per_day["matches"] - per_day["beyond_model"]
    lifetime = sorted(expression.names & set(LIFETIME_FEATURES))
    if lifetime:
        notes = (
            *notes,
            f"{', '.join(lifetime)} count a customer's whole history; the backtest saw its last"
            f" {WARM_UP.days} days before the period only, the stream saw more",
        )
    return BacktestReport(
        rule=rule,
        since=since,
        until=until,
        transactions=len(rows),
        matches=int(rows["matched"].sum()),
        flagged=int(rows["flagged"].sum()),
        beyond_model=int(rows["beyond_model"].sum()),
        per_day=per_day,
        labels=None if labels is None else _label_figures(rows, labels),
        notes=notes,
    )


def _valid_inputs(stored: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The stored rows whose input is a valid transaction, as (those rows, their typed inputs), and how
    many were left out."""
    valid = []
    for record in stored["transaction"].tolist():
        try:
            valid.append(msgspec.convert(record, TransactionData) is not None)
        except msgspec.ValidationError:
            valid.append(False)
    kept = stored[np.array(valid, dtype=bool)]
    records = kept["transaction"].tolist()
    raw = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=list(schema.INPUT_COLUMNS))
    return kept, schema.coerce(raw), len(stored) - len(kept)


def _replay(
    expression: Expression,
    inputs: pd.DataFrame,
    times: np.ndarray,
    scores: np.ndarray,
    progress: Progress | None,
) -> np.ndarray:
    """The rule's mask per row (rows in any order: replayed in time order, returned in input order)."""
    predicate = compile_rule(expression)
    order = np.argsort(times, kind="stable")
    engine = FeatureEngine()
    matched = np.zeros(len(inputs), dtype=bool)
    for start in range(0, len(order), CHUNK_ROWS):
        rows = order[start : start + CHUNK_ROWS]
        chunk = inputs.iloc[rows]
        features = engine.features_and_update(chunk, times=times[rows])
        try:
            matched[rows] = evaluate(predicate, rule_columns(features, chunk, scores[rows]))
        except Exception as error:
            raise BacktestError(f"the rule failed on the stored transactions: {error}") from error
        if progress is not None:
            progress(min(start + CHUNK_ROWS, len(order)), len(order))
    return matched


def _label_figures(rows: pd.DataFrame, labels: pd.DataFrame) -> LabelFigures:
    matched = rows[rows["matched"]].merge(labels, on="transaction_id", how="inner")
    fraud = matched["label"] == 1
    return LabelFigures(
        labelled=len(matched),
        frauds=int(fraud.sum()),
        frauds_beyond_model=int((fraud & ~matched["flagged"]).sum()),
    )
