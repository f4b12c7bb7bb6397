"""The rules topic on the session's real Kafka: publish, load from the beginning, follow, replace, disable."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from fraudstream.config import Settings
from fraudstream.infra.topics import ensure_topics
from fraudstream.pipeline.rules_feed import RuleFeed, disable_failed, publish, read_rules
from fraudstream.rules.compiler import BatchColumns
from fraudstream.rules.rule import Draft, version_of, with_enabled
from tests.helpers import end_offsets

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(stack_settings: Settings) -> Settings:
    """The session's stack with a rules topic of this test's own."""
    own = stack_settings.model_copy(update={"topic_rules": f"rules-{uuid.uuid4().hex[:8]}"})
    ensure_topics(own)
    return own


def draft(name: str, expression: str, enabled: bool = True, **extra: object) -> Draft:
    return Draft(name=name, expression=expression, action="block", enabled=enabled, **extra)


def test_an_empty_topic_gives_no_rules(settings):
    ruleset = read_rules(settings, timeout=20)

    assert ruleset.history == {} and ruleset.active == () and ruleset.offset == -1


def test_the_feed_loads_the_topic_then_follows_new_versions_and_disabling(settings):
    big = version_of(draft("Big", "amount > 1000"), None, "ana")
    night = version_of(draft("Night", "is_night = 1 and amount > 300", enabled=False), None, "ana")
    for version in (big, night):
        publish(settings, version)
    feed = RuleFeed(settings).start(timeout=20)
    try:
        loaded = feed.rules
        assert sorted(loaded.history) == ["big", "night"]
        assert [compiled.rule.id for compiled in loaded.active] == ["big"]

        edited = version_of(draft("Big", "amount > 500", id="big"), big, "bob")
        assert feed.wait_for(publish(settings, edited))
        replaced = feed.rules
        assert replaced.get("big") == edited and edited.version == 2
        assert [c.rule.expression for c in replaced.active] == ["amount > 500"]
        assert loaded.get("big") == big  # the earlier snapshot is unchanged

        disabled = with_enabled(edited, False, "bob", note="too many alerts")
        assert feed.wait_for(publish(settings, disabled))
        assert feed.rules.active == ()
        assert [v.version for v in feed.rules.history["big"]] == [1, 2, 3]
        assert feed.rules.get("big").note == "too many alerts"
    finally:
        feed.stop()

    again = read_rules(settings, timeout=20)
    assert again.latest == feed.rules.latest and again.history == feed.rules.history


def test_a_rule_failing_at_run_time_is_disabled_with_the_error_in_its_note(settings):
    breaks = version_of(draft("Breaks", "n_24h > 1"), None, "ana")
    fine = version_of(draft("Fine", "amount > 1"), None, "ana")
    for version in (breaks, fine):
        publish(settings, version)
    feed = RuleFeed(settings).start(timeout=20)
    try:
        columns = BatchColumns([{"amount": np.array([5.0])}], 1)  # no n_24h: the first rule raises
        evaluation = feed.rules.evaluate(columns)

        disabled = disable_failed(settings, feed.rules, evaluation.failures, "detector")
        again = disable_failed(settings, feed.rules, evaluation.failures, "detector")  # not yet read back

        assert feed.wait_for(end_offset(settings) - 1)
        assert [(v.id, v.version, v.enabled, v.author) for v in disabled] == [
            ("breaks", 2, False, "detector")
        ]
        assert disabled[0].note.startswith("disabled after failing at run time: KeyError")
        assert [c.rule.id for c in feed.rules.active] == ["fine"]
        assert disable_failed(settings, feed.rules, evaluation.failures, "detector") == []
        assert len(again) == 1  # a second detector may disable it too: one more version, same state
    finally:
        feed.stop()


def end_offset(settings: Settings) -> int:
    return end_offsets(settings, settings.topic_rules)[0]
