"""Quality metrics of fraud scores against known labels, shared by training and offline scoring."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, confusion_matrix, precision_recall_curve, roc_auc_score


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
    """The highest F1 over all thresholds and where it is, to check that 0.5 is a good operating point."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    best = int(np.argmax(f1))
    return {"f1": float(f1[best]), "threshold": float(thresholds[best])}
