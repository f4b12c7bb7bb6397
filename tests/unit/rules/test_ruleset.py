"""The rules in force: versions folded from the topic's records, evaluation with failures, the decision."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from fraudstream.rules import rule as rules
from fraudstream.rules.rule import Draft, Rule, RuleConflict, version_of, with_enabled
from fraudstream.rules.ruleset import (
    ALLOW,
    BLOCK,
    REVIEW,
    RuleLog,
    decide,
    matched_rules,
    rule_columns,
    ruleset_of,
)
from fraudstream.rules.syntax import RuleError

AT = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def make(
    rule_id: str, expression: str, action: str = "block", enabled: bool = True, version: int = 1
) -> Rule:
    return Rule(
        id=rule_id,
        name=rule_id.replace("-", " "),
        expression=expression,
        action=action,
        author="ana",
        version=version,
        enabled=enabled,
        created_at=AT,
    )


def test_decision_block_beats_allow_beats_review_and_the_model_flag():
    #                     rows: 0     1      2      3      4      5
    matches = np.array(
        [
            [True, False, False, False, True, False],  # block
            [True, True, False, False, False, False],  # allow
            [False, False, True, False, True, False],  # review
        ]
    )
    actions = np.array([BLOCK, ALLOW, REVIEW])
    flags = np.array([0, 1, 0, 1, 0, 0])

    decisions = decide(matches, actions, flags)

    assert decisions.tolist() == ["block", "allow", "review", "review", "block", "allow"]


def test_without_rules_the_decision_is_the_model_flag():
    decisions = decide(np.zeros((0, 3), dtype=bool), np.zeros(0, dtype=np.int8), [1, 0, 1])

    assert decisions.tolist() == ["review", "allow", "review"]


def test_matched_rules_lists_each_rows_rules_with_their_versions():
    matches = np.array([[True, False, True], [True, False, False]])
    versions = (make("a", "true", version=3), make("b", "true", version=1))

    assert matched_rules(matches, versions) == [
        ({"id": "a", "version": 3}, {"id": "b", "version": 1}),
        (),
        ({"id": "a", "version": 3},),
    ]


def test_matched_rules_over_many_rules_and_rows_equal_a_plain_loop():
    rng = np.random.default_rng(7)
    matches = rng.random((70, 300)) < 0.05  # more rules than one byte holds, many combinations
    versions = tuple(make(f"r{index}", "true", version=index + 1) for index in range(70))

    expected = [
        tuple({"id": versions[i].id, "version": versions[i].version} for i in np.flatnonzero(matches[:, row]))
        for row in range(300)
    ]
    assert matched_rules(matches, versions) == expected


def batch_columns():
    frame = pd.DataFrame(
        {"cat_id": pd.Series(["food", "misc_net", "food"], dtype="str"), "name_1": ["A", "B", "C"]}
    )
    features = {"amount": pd.Series([10.0, 900.0, 50.0]), "n_1h": np.array([0, 4, 1])}
    return rule_columns(features, frame, np.array([0.1, 0.2, 0.9]))


def test_a_failing_rule_is_reported_and_the_others_still_apply():
    ruleset = ruleset_of(
        [
            make("big", "amount > 100"),
            make("breaks", "n_24h > 1"),  # the batch has no n_24h column
            make("trusted", "name_1 = 'A'", action="allow"),
            make("scored", "score > 0.5 and cat_id = 'food'", action="review"),
        ]
    )

    evaluation = ruleset.evaluate(batch_columns())

    [failure] = evaluation.failures
    assert (failure.rule.id, failure.error) == ("breaks", "KeyError: \"the batch has no column 'n_24h'\"")
    assert evaluation.decisions([0, 0, 0]).tolist() == ["allow", "block", "review"]
    assert evaluation.matched() == [
        ({"id": "trusted", "version": 1},),
        ({"id": "big", "version": 1},),
        ({"id": "scored", "version": 1},),
    ]


def test_a_snapshot_without_its_failed_rules_evaluates_the_others_only():
    ruleset = ruleset_of([make("big", "amount > 100"), make("breaks", "n_24h > 1")])
    failures = ruleset.evaluate(batch_columns()).failures

    again = ruleset.without(failures).evaluate(batch_columns())

    assert again.failures == () and [rule.id for rule in again.rules] == ["big"]
    assert len(ruleset.active) == 2  # the snapshot itself is unchanged


def test_the_latest_record_of_an_id_is_in_force_and_disabled_rules_are_listed_not_applied():
    first = make("big", "amount > 100")
    edited = make("big", "amount > 20", version=2)
    disabled = with_enabled(edited, False, "bob", note="too noisy", at=AT)
    log = RuleLog()
    for offset, version in enumerate([first, make("small", "amount < 20"), edited]):
        log.add(offset, version.id.encode(), rules.encode(version))

    before = log.snapshot()
    log.add(3, b"big", rules.encode(disabled))
    after = log.snapshot()

    assert [compiled.rule.version for compiled in before.active if compiled.rule.id == "big"] == [2]
    assert before.evaluate(batch_columns()).matches.tolist() == [[False, True, True], [True, False, False]]
    assert [compiled.rule.id for compiled in after.active] == ["small"]
    assert after.get("big") == disabled and disabled.version == 3 and disabled.author == "bob"
    assert [version.version for version in after.history["big"]] == [1, 2, 3]
    assert before.get("big").version == 2  # a snapshot never changes


def test_invalid_records_are_kept_as_rejected_and_invalid_expressions_are_not_applied():
    log = RuleLog()
    log.add(0, b"x", b"{not json")
    log.add(1, b"other", rules.encode(make("big", "amount > 1")))
    log.add(2, b"gone", None)
    log.add(3, b"typo", rules.encode(make("typo", "amout > 1")))

    snapshot = log.snapshot()

    assert [(r.offset, r.key) for r in snapshot.rejected] == [(0, "x"), (1, "other"), (2, "gone")]
    assert "tombstone" in snapshot.rejected[2].reason
    assert snapshot.invalid == {"typo": "unknown name 'amout'; did you mean amount, amount_7d, amount_1h?"}
    assert snapshot.active == () and snapshot.offset == 3


def test_versions_follow_from_drafts():
    draft = Draft(name="Night spend", expression="is_night = 1 and amount > 500", action="review")

    first = version_of(draft, None, "ana", AT)
    edit = version_of(
        Draft(id="night-spend", name="Night spend", expression="amount > 900", action="block"),
        first,
        "bob",
        AT,
    )

    assert (first.id, first.version, first.enabled, first.author) == ("night-spend", 1, False, "ana")
    assert (edit.version, edit.enabled, edit.action, edit.author) == (2, False, "block", "bob")
    with pytest.raises(RuleConflict, match="a rule with id 'night-spend' exists already"):
        version_of(draft, first, "ana", AT)
    with pytest.raises(RuleError, match="unknown name 'amout'"):
        version_of(Draft(name="x", expression="amout > 1", action="block"), None, "ana", AT)


def test_the_rule_message_round_trips_and_refuses_bad_fields():
    version = make("big", "amount > 100")

    assert rules.decode(rules.encode(version)) == version
    with pytest.raises(ValueError, match=r"Invalid enum value 'deny' - at `\$.action`"):
        rules.decode(rules.encode(version).replace(b'"block"', b'"deny"'))
    with pytest.raises(ValueError, match=r"at `\$.id`"):
        rules.decode(rules.encode(version).replace(b'"big"', b'"Big Rule"', 1))
