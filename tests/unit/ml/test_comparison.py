"""Champion against challenger on the same labelled transactions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudstream.ml.comparison import challenger_not_worse, compare


def rows(challenger_noise: float) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.1).astype(int)
    champion = np.clip(labels * 0.7 + rng.random(400) * 0.3, 0, 1)
    challenger = np.clip(labels * 0.7 + rng.random(400) * (0.3 + challenger_noise), 0, 1)
    return pd.DataFrame(
        {
            "transaction_id": [f"t{i}" for i in range(400)],
            "scored_at": pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(np.arange(400) % 2, "D"),
            "label": labels,
            "score": champion,
            "shadow_score": challenger,
        }
    )


def test_a_noisier_challenger_is_worse_and_refused():
    result = compare(rows(0.8), thresholds=(0.5, 0.5), budget_per_day=10)
    assert result["alert_budget"] == 10 and result["rows"] == 400
    assert result["champion"]["pr_auc"] == 1.0 > result["challenger"]["pr_auc"]
    assert result["champion"]["at_budget"]["flagged"] == 20  # 10 on each of the two days
    assert result["champion"]["at_budget"]["precision"] == 1.0
    assert 0 < result["disagreement_rate"] < 1
    assert len(result["most_disagreed"]) == 10
    differences = [row["difference"] for row in result["most_disagreed"]]
    assert differences == sorted(differences, reverse=True)
    allowed, why = challenger_not_worse(result)
    assert not allowed and why.startswith("PR-AUC")


def test_an_equal_challenger_may_be_promoted_and_no_labels_mean_no_comparison():
    assert challenger_not_worse(compare(rows(0.0), (0.5, 0.5), 10))[0]
    unlabelled = rows(0.0).assign(label=0)
    allowed, why = challenger_not_worse(compare(unlabelled, (0.5, 0.5), 10))
    assert not allowed and why.startswith("no comparison")


def test_the_budget_takes_each_days_highest_scores():
    frame = rows(0.0).assign(
        scored_at=pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(np.arange(400) // 200, "D"),
        score=np.r_[np.linspace(0, 1, 200), np.linspace(0, 0.5, 200)],
    )
    frame["label"] = 0
    frame.loc[[397, 398, 399], "label"] = 1  # the second day's 3 highest: low against the first day's
    at_budget = compare(frame, (0.5, 0.5), 3)["champion"]["at_budget"]
    assert at_budget["flagged"] == 6 and at_budget["recall"] == 1.0 and at_budget["precision"] == 0.5
