"""The detector's rule stage: one snapshot per batch, failures skipped, counted and disabled once.

The feed and the disabling are recording doubles: this tests the stage's sequencing; the real topic,
the real detector and the sink are in tests/integration/test_stream_rules.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import REGISTRY

from fraudstream.config import Settings
from fraudstream.pipeline.detector.rules import AUTHOR, RuleStage
from fraudstream.rules.rule import Rule, with_enabled
from fraudstream.rules.ruleset import RuleFailure, RuleSet, ruleset_of

AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FRAME = pd.DataFrame({"amount": [5.0, 950.0, 20.0], "cat_id": ["food", "shopping_net", "shopping_net"]})
FEATURES = {"n_1h": np.array([1.0, 2.0, 3.0])}
SCORES, FLAGS = np.array([0.1, 0.2, 0.9]), np.array([0, 0, 1])


def make(rule_id: str, expression: str, action: str = "block", version: int = 1) -> Rule:
    return Rule(
        id=rule_id,
        name=rule_id,
        expression=expression,
        action=action,
        author="ana",
        version=version,
        enabled=True,
        created_at=AT,
    )


class Feed:
    """What the stage reads of a ``RuleFeed``: its latest snapshot."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules


class Disabler:
    """Records the calls to ``disable_failed``; raises while ``down``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []
        self.down = False

    def __call__(
        self, settings: Settings, ruleset: RuleSet, failures: Iterable[RuleFailure], author: str
    ) -> list[Rule]:
        if self.down:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker down"))
        failed = [failure.rule.id for failure in failures]
        self.calls.append((author, failed))
        return []


def failures_of(rule_id: str) -> float:
    return REGISTRY.get_sample_value("fraudstream_rule_failures_total", {"rule": rule_id}) or 0.0


def test_without_enabled_rules_the_decision_is_the_model_flag_and_nothing_matches():
    stage = RuleStage(Settings(), Feed(ruleset_of([])), Disabler())

    decided = stage.decide(FEATURES, FRAME, SCORES, FLAGS)

    assert decided.decisions.tolist() == ["allow", "allow", "review"]
    assert decided.matched == [(), (), ()] and decided.offset == -1


def test_each_batch_takes_the_rules_in_force_when_it_starts():
    big = make("big-net", "amount > 900 and cat_id = 'shopping_net'")
    feed = Feed(ruleset_of([]))
    stage = RuleStage(Settings(), feed, Disabler())

    before = stage.decide(FEATURES, FRAME, SCORES, FLAGS)
    feed.rules = ruleset_of([big])
    after = stage.decide(FEATURES, FRAME, SCORES, FLAGS)

    assert before.decisions.tolist() == ["allow", "allow", "review"]
    assert after.decisions.tolist() == ["allow", "block", "review"]
    assert after.matched == [(), ({"id": "big-net", "version": 1},), ()] and after.offset == 0
    assert stage.status() == {"offset": 0, "active": 1, "failed": []}


def test_a_failing_rule_is_counted_skipped_and_disabled_once_while_the_batch_is_decided_without_it():
    breaks = make("breaks", "n_24h > 1")  # the batch has no n_24h: it raises, as a failure at run time
    big = make("big", "amount > 900")
    feed, disabler = Feed(ruleset_of([breaks, big])), Disabler()
    stage = RuleStage(Settings(), feed, disabler)
    counted = failures_of("breaks")

    first = stage.decide(FEATURES, FRAME, SCORES, FLAGS)
    second = stage.decide(FEATURES, FRAME, SCORES, FLAGS)  # its disabling not read back yet

    assert first.decisions.tolist() == second.decisions.tolist() == ["allow", "block", "review"]
    assert first.matched[1] == ({"id": "big", "version": 1},)
    assert disabler.calls == [(AUTHOR, ["breaks"])]
    assert failures_of("breaks") == counted + 1
    assert stage.status()["failed"] == ["breaks v1"]

    feed.rules = ruleset_of([breaks, big, with_enabled(breaks, False, AUTHOR, at=AT)])
    stage.decide(FEATURES, FRAME, SCORES, FLAGS)
    assert stage.status() == {"offset": 2, "active": 1, "failed": []}


def test_a_disabling_that_cannot_be_published_is_retried_at_the_next_batch_without_raising():
    breaks = make("breaks", "n_24h > 1")
    disabler = Disabler()
    disabler.down = True
    stage = RuleStage(Settings(), Feed(ruleset_of([breaks])), disabler)

    first = stage.decide(FEATURES, FRAME, SCORES, FLAGS)
    disabler.down = False
    stage.decide(FEATURES, FRAME, SCORES, FLAGS)
    stage.decide(FEATURES, FRAME, SCORES, FLAGS)

    assert first.decisions.tolist() == ["allow", "allow", "review"]
    assert disabler.calls == [(AUTHOR, ["breaks"])]
