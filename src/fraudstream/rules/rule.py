"""A rule version, the message of the ``rules`` topic (its key is the rule's id), and how versions follow.

Every change is a new version (version + 1) published under the same id: an edit, enabling, disabling.
Nothing is deleted, so a rule's history is its versions in the topic, in order.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from fraudstream.rules.syntax import MAX_RULE_LENGTH, RuleError
from fraudstream.rules.types import Expression, check

Action = Literal["block", "review", "allow"]
ACTIONS: tuple[Action, ...] = ("block", "review", "allow")
MAX_NOTE_LENGTH = 500
SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"

RuleId = Annotated[str, Meta(pattern=SLUG_PATTERN)]
Label = Annotated[str, Meta(min_length=1, max_length=200)]


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """One version of a rule, as published to the ``rules`` topic (JSON)."""

    id: RuleId
    name: Label
    expression: Annotated[str, Meta(min_length=1, max_length=MAX_RULE_LENGTH)]
    action: Action
    author: Label
    version: Annotated[int, Meta(ge=1)]
    enabled: bool
    created_at: datetime
    note: Annotated[str, Meta(max_length=MAX_NOTE_LENGTH)] = ""  # why this version was made


class Draft(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What an analyst writes (a file, a form): the rest of a version is filled in on publishing."""

    name: Label
    expression: Annotated[str, Meta(min_length=1, max_length=MAX_RULE_LENGTH)]
    action: Action
    id: RuleId | None = None
    enabled: bool | None = None


class RuleConflict(ValueError):
    """A change that does not fit the rules as they are (an id taken, a rule that does not exist)."""


class RuleFieldError(ValueError):
    """A version with a field out of bounds (a name too long, an id that is no slug, ...)."""


encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Rule)


def encode(rule: Rule) -> bytes:
    return encoder.encode(rule)


def decode(value: bytes) -> Rule:
    """A rule message; raises ``msgspec.DecodeError`` (a ``ValueError``) saying what is wrong."""
    return _decoder.decode(value)


def slug(name: str) -> str:
    """An id from a rule's name: lower-case words joined by '-' (``Night spend`` -> ``night-spend``)."""
    words = re.findall(r"[a-z0-9]+", name.lower())
    return "-".join(words)[:64].strip("-") or "rule"


def now() -> datetime:
    return datetime.now(UTC)


def version_of(draft: Draft, current: Rule | None, author: str, at: datetime | None = None) -> Rule:
    """The version ``draft`` makes: version 1 of a new rule (disabled unless it says otherwise, so it is
    backtested first), or the next version of ``current``. Raises ``RuleError`` for an invalid
    expression, ``RuleConflict`` when a new rule's id is taken."""
    check(draft.expression)
    rule_id = draft.id or slug(draft.name)
    if current is not None and current.id != rule_id:
        raise RuleConflict(f"editing rule {current.id!r} with a draft for {rule_id!r}")
    if current is not None and draft.id is None:
        raise RuleConflict(
            f"a rule with id {rule_id!r} exists already; give its id to edit it, or another name"
        )
    enabled = draft.enabled if draft.enabled is not None else (current.enabled if current else False)
    return _validated(
        Rule(
            id=rule_id,
            name=draft.name,
            expression=draft.expression,
            action=draft.action,
            author=author,
            version=current.version + 1 if current else 1,
            enabled=enabled,
            created_at=at or now(),
        )
    )


def with_enabled(
    current: Rule, enabled: bool, author: str, note: str = "", at: datetime | None = None
) -> Rule:
    """The next version of ``current``, enabled or disabled; the rest unchanged."""
    return _validated(
        msgspec.structs.replace(
            current,
            enabled=enabled,
            author=author,
            version=current.version + 1,
            note=note,
            created_at=at or now(),
        )
    )


def _validated(version: Rule) -> Rule:
    """``version`` as the topic's readers will decode it: building a struct does not check its bounds."""
    try:
        return decode(encode(version))
    except msgspec.ValidationError as error:
        raise RuleFieldError(str(error)) from error


def expression_of(rule: Rule) -> Expression:
    """The checked expression of a rule read from the topic (raises ``RuleError`` if it is invalid)."""
    return check(rule.expression)


__all__ = [
    "ACTIONS",
    "Action",
    "Draft",
    "Rule",
    "RuleConflict",
    "RuleError",
    "RuleFieldError",
    "decode",
    "encode",
    "expression_of",
    "slug",
    "version_of",
    "with_enabled",
]
