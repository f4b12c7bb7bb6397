"""Champion against challenger on the same labelled transactions: which one would serve better.

Both models scored every transaction of the comparison (the challenger in shadow), so the comparison
is paired: PR-AUC over all of them; precision and recall at each model's own threshold and at the
alert budget (each model's ``budget_per_day`` highest scores of each day, what the analysts could
review); how often the two disagree on the flag, and the transactions where their scores differ most.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

TOP_DISAGREEMENTS = 10


def compare(rows: pd.DataFrame, thresholds: tuple[float, float], budget_per_day: int) -> dict[str, Any]:
    """``rows`` has ``transaction_id``, ``scored_at``, ``label``, ``score`` (champion) and
    ``shadow_score`` (challenger); ``thresholds`` are theirs, in that order. At the alert budget, each
    model flags its ``budget_per_day`` highest scores of each day (UTC) of ``scored_at``: what the
    analysts could have reviewed."""
    labels = rows["label"].to_numpy(dtype=np.int64)
    days = pd.to_datetime(rows["scored_at"], utc=True).dt.floor("D").to_numpy()
    result: dict[str, Any] = {
        "rows": len(rows),
        "positives": int(labels.sum()),
        "alert_budget": budget_per_day,
        "thresholds": {"champion": thresholds[0], "challenger": thresholds[1]},
    }
    flagged = {}
    for (name, column), threshold in zip(
        (("champion", "score"), ("challenger", "shadow_score")), thresholds, strict=True
    ):
        scores = rows[column].to_numpy(dtype=np.float64)
        flagged[name] = scores > threshold
        result[name] = {
            "pr_auc": _pr_auc(labels, scores),
            "at_threshold": _precision_recall(labels, flagged[name]),
            "at_budget": _precision_recall(labels, _top_per_day(scores, days, budget_per_day)),
        }
    disagree = flagged["champion"] != flagged["challenger"]
    result["disagreement_rate"] = float(np.mean(disagree)) if len(rows) else 0.0
    difference = (rows["shadow_score"].astype(float) - rows["score"].astype(float)).abs()
    most = rows.assign(difference=difference).nlargest(TOP_DISAGREEMENTS, "difference")
    result["most_disagreed"] = most[
        ["transaction_id", "label", "score", "shadow_score", "difference"]
    ].to_dict("records")
    return result


def challenger_not_worse(result: dict[str, Any]) -> tuple[bool, str]:
    """Whether the challenger may replace the champion on this comparison, and why (PR-AUC decides)."""
    champion, challenger = result["champion"]["pr_auc"], result["challenger"]["pr_auc"]
    if champion is None or challenger is None:
        return False, (
            f"no comparison: {result['rows']} labelled transactions scored by both, "
            f"{result['positives']} of them fraud (both classes are needed)"
        )
    if challenger < champion:
        return (
            False,
            f"PR-AUC {challenger:.4f} < the champion's {champion:.4f} on {result['rows']} transactions",
        )
    return True, f"PR-AUC {challenger:.4f} >= the champion's {champion:.4f} on {result['rows']} transactions"


def _pr_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    return float(average_precision_score(labels, scores)) if 0 < labels.sum() < len(labels) else None


def _top_per_day(scores: np.ndarray, days: np.ndarray, count: int) -> np.ndarray:
    """A mask of the ``count`` highest scores of each day (ties broken by position)."""
    order = np.lexsort((np.arange(len(scores)), -scores, days))  # by day, then score descending
    rank = np.arange(len(order)) - np.searchsorted(days[order], days[order], side="left")
    mask = np.zeros(len(scores), dtype=bool)
    mask[order[rank < count]] = True
    return mask


def _precision_recall(labels: np.ndarray, flagged: np.ndarray) -> dict[str, float | int]:
    hits = int((labels[flagged] == 1).sum())
    return {
        "flagged": int(flagged.sum()),
        "precision": hits / flagged.sum() if flagged.sum() else 0.0,
        "recall": hits / labels.sum() if labels.sum() else 0.0,
    }
