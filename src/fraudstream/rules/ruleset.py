"""The rules in force, as one immutable snapshot, their evaluation over a batch, and the decision.

A ``RuleSet`` is the state of the ``rules`` topic up to some offset: each rule's versions in order, the
latest one in force. ``RuleLog`` folds the topic's records into successive snapshots, compiling each
rule version once. The detector (and offline scoring, and the backtest) evaluates a snapshot per batch:

    columns = rule_columns(features, frame, scores)
    evaluation = ruleset.evaluate(columns)
    decisions, matched = evaluation.decisions(flags), evaluation.matched()

The decision per transaction: ``block`` if a block rule matches, else ``allow`` if an allow rule
matches, else ``review`` if a review rule matches or the model flags it, else ``allow``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import msgspec
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from fraudstream.contracts.schema import Table
from fraudstream.logs import fields
from fraudstream.rules import rule as rules
from fraudstream.rules.compiler import BatchColumns, Predicate, compile_rule
from fraudstream.rules.rule import ACTIONS, Draft, Rule, RuleConflict, version_of
from fraudstream.rules.syntax import RuleError
from fraudstream.rules.types import SCORE

logger = logging.getLogger(__name__)

DECISIONS = np.array(["allow", "review", "block"], dtype=object)
ALLOW, REVIEW, BLOCK = range(3)
_json = msgspec.json.Encoder()
MAX_REJECTED = 100  # the latest invalid records kept for display (all are logged)
_ACTION_CODE = {"allow": ALLOW, "review": REVIEW, "block": BLOCK}


@dataclass(frozen=True)
class Compiled:
    rule: Rule
    predicate: Predicate


@dataclass(frozen=True)
class RuleFailure:
    """A rule that raised while evaluating a batch: the caller disables it; the others were applied."""

    rule: Rule
    error: str


@dataclass(frozen=True)
class Rejected:
    """A record of the topic that is not a valid rule version (kept for the record, never evaluated)."""

    offset: int
    key: str
    reason: str


def rule_columns(features: Mapping[str, ArrayLike], inputs: Table, scores: np.ndarray) -> BatchColumns:
    """What rules read for one batch: the features, then the input's columns, then ``score``."""
    return BatchColumns([features, inputs, {SCORE: scores}], len(scores))


@dataclass(frozen=True)
class Evaluation:
    """Which active rule matched which row (``matches[i]`` is ``rules[i]``'s mask) and which failed."""

    rules: tuple[Rule, ...]
    matches: np.ndarray
    failures: tuple[RuleFailure, ...]

    def decisions(self, flags: ArrayLike) -> np.ndarray:
        actions = np.array([_ACTION_CODE[rule.action] for rule in self.rules], dtype=np.int8)
        return decide(self.matches, actions, flags)

    def matched(self) -> list[tuple[dict[str, object], ...]]:
        return matched_rules(self.matches, self.rules)


def decide(matches: np.ndarray, actions: np.ndarray, flags: ArrayLike) -> np.ndarray:
    """Per row: block if a block rule matches, else allow if an allow rule matches, else review if a
    review rule matches or the model flags the row, else allow. ``matches`` is (rules, rows) bool,
    ``actions`` the rules' action codes; returns an object array of "block"/"review"/"allow"."""
    flags = np.asarray(flags).astype(bool)
    block = matches[actions == BLOCK].any(axis=0)
    allow = matches[actions == ALLOW].any(axis=0)
    review = matches[actions == REVIEW].any(axis=0) | flags
    codes = np.where(block, BLOCK, np.where(allow, ALLOW, np.where(review, REVIEW, ALLOW)))
    return DECISIONS[codes]


def matched_rules(matches: np.ndarray, rules: tuple[Rule, ...]) -> list[tuple[dict[str, object], ...]]:
    """Per row, the ``{"id", "version"}`` of the rules that matched it, in the rules' order.

    Built once per distinct combination of matches, not per row: rows with the same matches share one
    (immutable) tuple, and most rows share the empty one."""
    rows = matches.shape[1]
    matched: list[tuple[dict[str, object], ...]] = [()] * rows
    hit = np.flatnonzero(matches.any(axis=0))
    if len(hit) == 0:
        return matched
    packed = np.ascontiguousarray(np.packbits(matches[:, hit], axis=0).T)  # one row of bytes per hit row
    keys = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    patterns, indices = np.nonzero(np.unpackbits(packed[first], axis=1, count=len(rules)))
    tags = [{"id": rule.id, "version": rule.version} for rule in rules]
    combinations: list[list[dict[str, object]]] = [[] for _ in range(len(first))]
    for pattern, index in zip(patterns.tolist(), indices.tolist(), strict=True):
        combinations[pattern].append(tags[index])
    shared = [tuple(combination) for combination in combinations]
    for row, combination in zip(hit.tolist(), inverse.ravel().tolist(), strict=True):
        matched[row] = shared[combination]
    return matched


@dataclass(frozen=True)
class RuleSet:
    """An immutable snapshot of the rules: latest version per id (disabled ones listed, not evaluated)."""

    history: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)
    active: tuple[Compiled, ...] = ()
    invalid: Mapping[str, str] = field(default_factory=dict)  # id -> why its latest version is not applied
    rejected: tuple[Rejected, ...] = ()
    offset: int = -1  # the last offset of the topic folded in

    @property
    def latest(self) -> dict[str, Rule]:
        return {rule_id: versions[-1] for rule_id, versions in sorted(self.history.items())}

    def get(self, rule_id: str) -> Rule | None:
        versions = self.history.get(rule_id)
        return versions[-1] if versions else None

    def without(self, failures: Iterable[RuleFailure]) -> RuleSet:
        """This snapshot without the failed versions, for the batches until their disabling is read back."""
        failed = {(failure.rule.id, failure.rule.version) for failure in failures}
        active = tuple(c for c in self.active if (c.rule.id, c.rule.version) not in failed)
        return dataclasses.replace(self, active=active)

    def evaluate(self, columns: BatchColumns) -> Evaluation:
        """Every active rule over the batch; a rule that raises is reported and matches nothing.
        Overflows to infinity and NaN from infinities are values like any other, not warnings."""
        matches = np.zeros((len(self.active), columns.rows), dtype=bool)
        failures = []
        with np.errstate(all="ignore"):
            self._evaluate_into(matches, failures, columns)
        return Evaluation(tuple(compiled.rule for compiled in self.active), matches, tuple(failures))

    def _evaluate_into(self, matches: np.ndarray, failures: list[RuleFailure], columns: BatchColumns) -> None:
        for index, compiled in enumerate(self.active):
            try:
                matches[index] = compiled.predicate(columns)
            except Exception as error:  # any failure of one rule must not stop the others
                failures.append(RuleFailure(compiled.rule, f"{type(error).__name__}: {error}"))
                logger.warning(
                    "rule failed",
                    extra=fields(rule=compiled.rule.id, version=compiled.rule.version, error=str(error)),
                )


def decision_columns(ruleset: RuleSet) -> Callable[..., pd.DataFrame]:
    """For offline scoring (``ml.offline``'s ``decide``): ``decision`` and ``rules`` (the matched
    rules as JSON) of rows in time order, by the same functions as the stream detector's."""

    def decide(
        inputs: pd.DataFrame, features: Mapping[str, ArrayLike], scores: np.ndarray, flags: np.ndarray
    ) -> pd.DataFrame:
        evaluation = ruleset.evaluate(rule_columns(features, inputs, scores))
        matched = [_json.encode(row).decode() for row in evaluation.matched()]
        return pd.DataFrame({"decision": evaluation.decisions(flags), "rules": matched})

    return decide


def new_versions(ruleset: RuleSet, drafts: Iterable[Draft], author: str) -> list[Rule]:
    """The versions ``drafts`` make against ``ruleset``, every one checked before any is returned:
    raises ``RuleError`` (an invalid expression) or ``RuleConflict``."""
    versions = []
    for draft in drafts:
        versions.append(version_of(draft, ruleset.get(draft.id or rules.slug(draft.name)), author))
    ids = [version.id for version in versions]
    repeated = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
    if repeated:
        raise RuleConflict(f"more than one rule with the id {repeated[0]!r}")
    return versions


def ruleset_of(versions: Iterable[Rule]) -> RuleSet:
    """The snapshot of rule versions in publication order (a file's rules, a test's)."""
    log = RuleLog()
    for offset, version in enumerate(versions):
        log.add(offset, version.id.encode(), rules.encode(version))
    return log.snapshot()


class RuleLog:
    """Folds the ``rules`` topic's records, in offset order, into ``RuleSet`` snapshots.

    The latest record of an id is in force, as compaction keeps it; each version is compiled once.
    """

    def __init__(self) -> None:
        self._history: dict[str, list[Rule]] = {}
        self._compiled: dict[tuple[str, int, str], Predicate | str] = {}
        self._rejected: deque[Rejected] = deque(maxlen=MAX_REJECTED)
        self._offset = -1

    def add(self, offset: int, key: bytes | None, value: bytes | None) -> None:
        """Fold in one record; an invalid one is kept as rejected and logged, never raised."""
        self._offset = max(self._offset, offset)
        shown_key = key.decode(errors="replace") if key is not None else ""
        try:
            if value is None:
                raise ValueError("a tombstone: rules are disabled with a new version, never deleted")
            version = rules.decode(value)
            if key is None or shown_key != version.id:
                raise ValueError(f"key {shown_key!r} is not the rule's id {version.id!r}")
        except (msgspec.DecodeError, ValueError) as error:
            self._rejected.append(Rejected(offset, shown_key, str(error)))
            logger.warning(
                "rule record rejected", extra=fields(offset=offset, key=shown_key, error=str(error))
            )
            return
        self._history.setdefault(version.id, []).append(version)

    def snapshot(self) -> RuleSet:
        latest = [versions[-1] for _, versions in sorted(self._history.items())]
        active, invalid = [], {}
        for rule in latest:
            compiled = self._compile(rule)
            if isinstance(compiled, str):
                invalid[rule.id] = compiled
            elif rule.enabled:
                active.append(Compiled(rule, compiled))
        return RuleSet(
            history={rule_id: tuple(versions) for rule_id, versions in self._history.items()},
            active=tuple(active),
            invalid=invalid,
            rejected=tuple(self._rejected),
            offset=self._offset,
        )

    def _compile(self, rule: Rule) -> Predicate | str:
        """The rule's predicate, or why its expression is refused (one compilation per version)."""
        key = (rule.id, rule.version, rule.expression)
        if key not in self._compiled:
            try:
                self._compiled[key] = compile_rule(rules.expression_of(rule))
            except RuleError as error:
                self._compiled[key] = error.message
        return self._compiled[key]


__all__ = [
    "ACTIONS",
    "DECISIONS",
    "Evaluation",
    "RuleFailure",
    "RuleLog",
    "RuleSet",
    "decide",
    "decision_columns",
    "matched_rules",
    "new_versions",
    "rule_columns",
    "ruleset_of",
]
