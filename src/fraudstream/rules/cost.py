"""What rules cost the detector: evaluating N enabled rules (and deciding) on a batch, against the
model's prediction and the features of the same batch. Measured in process, medians of repeats;
``fraudstream rules cost`` prints it. Nothing here asserts a timing."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from fraudstream.contracts import schema
from fraudstream.ml.features import FeatureEngine
from fraudstream.ml.model import FraudModel
from fraudstream.rules.rule import ACTIONS, Rule
from fraudstream.rules.ruleset import RuleSet, rule_columns, ruleset_of

# Rules of the kinds analysts write: thresholds, categories, windows, ratios, texts, arithmetic.
TEMPLATES = (
    "amount > {a}",
    "amount > {a} and cat_id in ['shopping_net', 'misc_net', 'grocery_pos']",
    "n_1h >= {k} and amount_1h > {a}",
    "is_night = 1 and amount > {a} and cat_id != 'gas_transport'",
    "amount_to_mean_7d > {r} and n_7d >= {k}",
    "us_state in ['CA', 'NY', 'TX', 'FL'] and amount between {a} and {b}",
    "score > 0.{k} and home_distance > 0.{k}",
    "merch = 'fraud_Kirlin and Sons' and amount > {a}",
    "amount_24h / (n_24h + 1) > {a}",
    "not (cat_id = 'grocery_pos') and hour between 0 and {k}",
    "jobs in ['Engineer', 'Designer', 'Nurse'] and amount > {b}",
    "gender = 'F' and cat_is_new = 1 and amount > {a}",
    "minutes_since_prev between 0 and {k} and amount > {a}",
    "amount_to_cat_mean > {r} or (night_24h >= {k} and amount > {b})",
)


def sample_rules(count: int) -> list[Rule]:
    """``count`` enabled rules from the templates, constants varied so no two are the same."""
    created = datetime(2026, 1, 1, tzinfo=UTC)
    rules = []
    for index in range(count):
        template = TEMPLATES[index % len(TEMPLATES)]
        step = index // len(TEMPLATES) + 1
        expression = template.format(a=100 * step + 50, b=400 * step + 600, k=step + 1, r=2 + step)
        action = ACTIONS[index % len(ACTIONS)]
        rules.append(
            Rule(
                id=f"cost-{index}",
                name=f"cost {index}",
                expression=expression,
                action=action,
                author="cost",
                version=1,
                enabled=True,
                created_at=created,
            )
        )
    return rules


def _median_ms(work: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(
    model: FraudModel, frame: pd.DataFrame, ruleset: RuleSet, batch_rows: int, repeat: int
) -> dict[str, float]:
    """Median milliseconds per batch of ``batch_rows`` rows (the frame's last ones, after the others
    have built the customers' history): the features, the model's prediction, the rules with the
    decision and the matched rules per row."""
    frame = frame.iloc[np.argsort(schema.transaction_times(frame), kind="stable")]
    history, batch = frame.iloc[:-batch_rows], frame.iloc[-batch_rows:]
    engine = FeatureEngine()
    engine.features_and_update(history)
    times = schema.transaction_times(batch)
    customers = schema.customer_ids(batch)
    known = engine.export_state(set(customers))
    state = {customer: known.get(customer) for customer in set(customers)}  # None: a customer to forget

    def features() -> dict:
        engine.load_state(state)  # the same history before every repeat
        return engine.features_and_update(batch, customers, times)

    columns = features()
    scores = model.predict(columns)
    flags = (scores > model.threshold).astype(np.int64)

    def rules() -> None:
        evaluation = ruleset.evaluate(rule_columns(columns, batch, scores))
        evaluation.decisions(flags)
        evaluation.matched()

    matched = ruleset.evaluate(rule_columns(columns, batch, scores)).matches.any(axis=0)
    figures = {
        "rows": float(len(batch)),
        "matched_rows": float(matched.sum()),
        "rules": float(len(ruleset.active)),
        "features_ms": _median_ms(features, repeat),
        "predict_ms": _median_ms(lambda: model.predict(columns), repeat),
        "rules_ms": _median_ms(rules, repeat),
    }
    figures["rules_vs_predict"] = figures["rules_ms"] / figures["predict_ms"]
    return figures


def measure_all(
    model: FraudModel, frame: pd.DataFrame, count: int, batches: list[int], repeat: int
) -> list[dict[str, float]]:
    ruleset = ruleset_of(sample_rules(count))
    return [measure(model, frame, ruleset, rows, repeat) for rows in batches]
