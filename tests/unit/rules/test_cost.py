"""The cost measurement's rules and figures (what they measure, never how fast)."""

from __future__ import annotations

from fraudstream.ml.model import FraudModel
from fraudstream.rules.cost import measure_all, sample_rules
from fraudstream.rules.ruleset import ruleset_of
from tests.unit.transactions import synthetic


def test_the_sample_rules_are_distinct_valid_and_all_enabled():
    rules = sample_rules(50)
    ruleset = ruleset_of(rules)

    assert len({rule.expression for rule in rules}) == 50
    assert len(ruleset.active) == 50 and ruleset.invalid == {}
    assert {rule.action for rule in rules} == {"block", "review", "allow"}


def test_figures_per_batch_size(small_model):
    frame = synthetic(customers=10, days=10, seed=1).drop(columns="target")

    figures = measure_all(FraudModel.load(small_model), frame, 20, [200, 5], repeat=2)

    assert [(row["rows"], row["rules"]) for row in figures] == [(200.0, 20.0), (5.0, 20.0)]
    for row in figures:
        assert 0 <= row["matched_rows"] <= row["rows"]
        assert min(row["features_ms"], row["predict_ms"], row["rules_ms"]) > 0
        assert row["rules_vs_predict"] == row["rules_ms"] / row["predict_ms"]
