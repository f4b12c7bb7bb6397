"""Quality metrics of fraud scores against known labels, shared by training and offline scoring."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_curve, roc_auc_score

# What the analysts can review: the highest-scored transactions of each day.
ALERTS_PER_DAY = 100


def classification_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """ROC-AUC, PR-AUC (average precision), and precision/recall/F1 and confusion at ``score > threshold``."""
    labels = np.asarray(labels, dtype=np.int64)
    flags = (np.asarray(scores) > threshold).astype(np.int64)
    (tn, fp), (fn, tp) = confusion_matrix(labels, flags, labels=[0, 1])
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    both_classes = 0 < labels.sum() < len(labels)
    return {
        "rows": len(labels),
        "positives": int(labels.sum()),
        "threshold": threshold,
        "roc_auc": float(roc_auc_score(labels, scores)) if both_classes else None,
        "pr_auc": float(average_precision_score(labels, scores)) if both_classes else None,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0,
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }


def best_f1(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """The highest F1 over all thresholds and the threshold that gives it with ``score > threshold``.

    The threshold is halfway between the lowest flagged score and the highest score below it, not on
    a score, so that it keeps its F1 under ``>`` and leaves a margin on both sides."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    best = int(np.argmax(f1))
    below = float(thresholds[best - 1]) if best > 0 else 0.0
    return {"f1": float(f1[best]), "threshold": (below + float(thresholds[best])) / 2}


def alert_budget_metrics(
    labels: np.ndarray, scores: np.ndarray, days: np.ndarray, per_day: int = ALERTS_PER_DAY
) -> dict[str, Any]:
    """Precision and recall when the ``per_day`` highest scores of each day (``days``: day numbers) are
    reviewed, whatever the threshold: what an analyst team with that budget would find."""
    labels = np.asarray(labels, dtype=np.int64)
    order = np.lexsort((-np.asarray(scores), days))
    sorted_days = np.asarray(days)[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_days, sorted_days, side="left")
    reviewed = order[rank < per_day]
    found = int(labels[reviewed].sum())
    return {
        "alerts_per_day": per_day,
        "alerts": len(reviewed),
        "found": found,
        "precision": found / len(reviewed) if len(reviewed) else 0.0,
        "recall": found / int(labels.sum()) if labels.sum() else 0.0,
    }
