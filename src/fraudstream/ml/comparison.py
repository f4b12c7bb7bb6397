"""Champion against challenger on the same labelled transactions: which one would serve better.

Both models scored every transaction of the comparison (the challenger in shadow), so the comparison
is paired: PR-AUC over all of them; precision and recall at the threshold and at the alert budget (the
``budget_per_day x days`` highest scores of each model, what the analysts could review); how often the
two disagree on the flag, and the transactions where their scores differ most.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

TOP_DISAGREEMENTS = 10


def compare(rows: pd.DataFrame, threshold: float, budget_per_day: int, days: float) -> dict[str, Any]:
    """``rows`` has ``label``, ``score`` (champion), ``shadow_score`` (challenger) and ``transaction_id``."""
    labels = rows["label"].to_numpy(dtype=np.int64)
    budget = max(1, math.ceil(budget_per_day * days))
    result: dict[str, Any] = {"rows": len(rows), "positives": int(labels.sum()), "alert_budget": budget}
    for name, column in (("champion", "score"), ("challenger", "shadow_score")):
        scores = rows[column].to_numpy(dtype=np.float64)
        result[name] = {
            "pr_auc": _pr_auc(labels, scores),
            "at_threshold": _precision_recall(labels, scores > threshold),
            "at_budget": _precision_recall(labels, _top(scores, budget)),
        }
    flags = rows["score"].to_numpy() > threshold
    shadow_flags = rows["shadow_score"].to_numpy() > threshold
    result["disagreement_rate"] = float(np.mean(flags != shadow_flags)) if len(rows) else 0.0
    difference = (rows["shadow_score"] - rows["score"]).abs()
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


def _top(scores: np.ndarray, count: int) -> np.ndarray:
    """A mask of the ``count`` highest scores (ties broken by position, as an alert queue would)."""
    mask = np.zeros(len(scores), dtype=bool)
    mask[np.argsort(-scores, kind="stable")[:count]] = True
    return mask


def _precision_recall(labels: np.ndarray, flagged: np.ndarray) -> dict[str, float | int]:
    hits = int((labels[flagged] == 1).sum())
    return {
        "flagged": int(flagged.sum()),
        "precision": hits / flagged.sum() if flagged.sum() else 0.0,
        "recall": hits / labels.sum() if labels.sum() else 0.0,
    }
