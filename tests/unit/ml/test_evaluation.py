"""Evaluation: the best-F1 threshold under ``score > threshold``, and the alert budget per day."""

from __future__ import annotations

import numpy as np

from fraudstream.ml.evaluation import alert_budget_metrics, best_f1, classification_metrics


def test_the_best_f1_threshold_gives_that_f1_with_a_strict_comparison() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(2000) < 0.05).astype(int)
    scores = np.clip(labels * 0.4 + rng.random(2000) * 0.7, 0, 1).round(3)  # ties on purpose
    best = best_f1(labels, scores)
    assert classification_metrics(labels, scores, best["threshold"])["f1"] == best["f1"]
    flags = scores[None, :] > np.unique(np.concatenate([[0.0], scores]))[:, None]  # every distinct cut
    tp = (flags & (labels == 1)).sum(axis=1)
    every = 2 * tp / (flags.sum(axis=1) + labels.sum())
    assert abs(best["f1"] - every.max()) < 1e-12
    assert not np.isin(best["threshold"], scores)


def test_the_alert_budget_reviews_the_highest_scores_of_each_day() -> None:
    days = np.array([0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.9, 0.1, 0.5, 0.2, 0.8, 0.3, 0.7])
    labels = np.array([1, 1, 0, 0, 1, 1, 0])
    budget = alert_budget_metrics(labels, scores, days, per_day=2)
    # Day 0 reviews 0.9 (fraud) and 0.5; day 1 reviews 0.8 (fraud) and 0.7: 2 of 4 frauds, 2 of 4 alerts.
    assert budget == {"alerts_per_day": 2, "alerts": 4, "found": 2, "precision": 0.5, "recall": 0.5}
    assert alert_budget_metrics(labels, scores, days, per_day=5)["recall"] == 1.0
