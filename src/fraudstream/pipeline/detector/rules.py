"""The rules in force, applied by the detector to each batch: the decision and the matched rules per row.

The detector takes the feed's snapshot once per batch (``RuleStage.decide``), so a rule published while
it runs applies from a batch boundary on, never half-way through a batch. The evaluation is offline
scoring's (``rules.ruleset``: ``rule_columns``, ``RuleSet.evaluate``, ``Evaluation.decisions``), so
the stream and ``fraudstream score --rules`` decide alike. A rule that fails at run time matches
nothing in that batch (the others apply, no row is dropped); it is counted
(``fraudstream_rule_failures_total{rule}``) and logged, skipped from then on, and disabled through the
topic with the error in its note (the Rules page shows it), the detector as its author.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from confluent_kafka import KafkaException
from numpy.typing import ArrayLike
from prometheus_client import Counter

from fraudstream.config import Settings
from fraudstream.contracts.schema import Table
from fraudstream.logs import fields
from fraudstream.pipeline.rules_feed import RuleFeed, disable_failed
from fraudstream.rules.rule import Rule, RuleFieldError
from fraudstream.rules.ruleset import RuleFailure, RuleSet, decide, rule_columns

logger = logging.getLogger(__name__)

AUTHOR = "detector"
RULE_FAILURES = Counter("fraudstream_rule_failures", "rule versions that failed at run time", ["rule"])
_NO_ACTIONS = np.zeros(0, dtype=np.int8)

Disable = Callable[[Settings, RuleSet, Iterable[RuleFailure], str], list[Rule]]


@dataclass(frozen=True)
class Decided:
    """A batch's decisions ("block"/"review"/"allow", an object array), its rows' matched rules
    (``{"id", "version"}`` tuples) and the offset of the rules topic they were decided at."""

    decisions: np.ndarray
    matched: list[tuple[dict[str, object], ...]]
    offset: int


class RuleStage:
    """Decides each batch with the feed's rules; remembers the versions that failed until their
    disabled version is read back, and retries publishing it at the next batches if that failed."""

    def __init__(self, settings: Settings, feed: RuleFeed, disable: Disable = disable_failed) -> None:
        self.settings = settings
        self._feed = feed
        self._disable = disable
        self._failed: dict[tuple[str, int], RuleFailure] = {}
        self._undisabled: list[RuleFailure] = []

    def status(self) -> dict[str, object]:
        """For /healthz: the topic offset every later batch applies at least, the rules enabled, the
        versions skipped after a failure."""
        rules = self._feed.rules
        return {
            "offset": rules.offset,
            "active": len(rules.active),
            "failed": sorted(f"{rule_id} v{version}" for rule_id, version in self._failed),
        }

    def decide(
        self, features: Mapping[str, ArrayLike], inputs: Table, scores: np.ndarray, flags: np.ndarray
    ) -> Decided:
        """The decision and the matched rules of every row; with no rule enabled, the model's flag alone
        (review or allow) and nothing evaluated."""
        ruleset = self._in_force()
        if not ruleset.active:
            nothing = np.zeros((0, len(scores)), dtype=bool)
            return Decided(decide(nothing, _NO_ACTIONS, flags), [()] * len(scores), ruleset.offset)
        evaluation = ruleset.evaluate(rule_columns(features, inputs, scores))
        if evaluation.failures:
            self._failed_now(evaluation.failures)
        return Decided(evaluation.decisions(flags), evaluation.matched(), ruleset.offset)

    def _in_force(self) -> RuleSet:
        """The feed's snapshot, less the versions that failed (forgotten once no longer in force)."""
        rules = self._feed.rules
        if self._undisabled:
            self._publish_disabled(rules)
        if not self._failed:
            return rules
        active = {(compiled.rule.id, compiled.rule.version) for compiled in rules.active}
        self._failed = {key: failure for key, failure in self._failed.items() if key in active}
        return rules.without(self._failed.values())

    def _failed_now(self, failures: Iterable[RuleFailure]) -> None:
        for failure in failures:
            RULE_FAILURES.labels(failure.rule.id).inc()
            self._failed[(failure.rule.id, failure.rule.version)] = failure
            self._undisabled.append(failure)
        self._publish_disabled(self._feed.rules)

    def _publish_disabled(self, rules: RuleSet) -> None:
        """Disable the failed versions through the topic; a failure to publish is logged and retried at
        the next batch (the versions are skipped meanwhile), never raised into the batch."""
        try:
            self._disable(self.settings, rules, self._undisabled, AUTHOR)
        except (KafkaException, RuleFieldError) as error:
            rule_ids = [failure.rule.id for failure in self._undisabled]
            logger.warning("failed rules not disabled yet", extra=fields(rules=rule_ids, error=str(error)))
            return
        self._undisabled = []
