"""The rule language evaluated row by row in plain Python, written from the documented semantics
independently of the vectorised compiler: three-valued logic (None = unknown) on the original tree,
no pushing of negations, no factorizing. Used by the tests only."""

from __future__ import annotations

import math
from collections.abc import Mapping

from fraudstream.rules.syntax import (
    And,
    Arithmetic,
    Between,
    Boolean,
    Compare,
    In,
    Name,
    Negative,
    Node,
    Not,
    Number,
    Or,
    Text,
)
from fraudstream.rules.types import NAMES, Type

Truth = bool | None


def matches(tree: Node, row: Mapping[str, object]) -> bool:
    """Whether the rule is true for ``row`` (unknown is not a match)."""
    return truth(tree, row) is True


def value(node: Node, row: Mapping[str, object]) -> object:
    if isinstance(node, Number | Text | Boolean):
        return node.value
    if isinstance(node, Name):
        kind = NAMES[node.name]
        raw = row[node.name]
        if kind is Type.NUMBER:
            return float(raw)
        if kind is Type.BOOLEAN:
            return bool(raw)
        return str(raw)
    if isinstance(node, Negative):
        return -value(node.operand, row)
    if isinstance(node, Arithmetic):
        left, right = value(node.left, row), value(node.right, row)
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        if node.op == "*":
            return left * right
        return math.nan if right == 0 else left / right
    return truth(node, row)


def _missing(*values: object) -> bool:
    return any(isinstance(v, float) and math.isnan(v) for v in values)


def _relation(op: str, left: object, right: object) -> Truth:
    if _missing(left, right):
        return None
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }[op]


def _not(value: Truth) -> Truth:
    return None if value is None else not value


def truth(node: Node, row: Mapping[str, object]) -> Truth:
    if isinstance(node, Boolean | Name):
        return bool(value(node, row))
    if isinstance(node, Not):
        return _not(truth(node.operand, row))
    if isinstance(node, And):
        values = [truth(item, row) for item in node.items]
        if False in values:
            return False
        return None if None in values else True
    if isinstance(node, Or):
        values = [truth(item, row) for item in node.items]
        if True in values:
            return True
        return None if None in values else False
    if isinstance(node, Compare):
        return _relation(node.op, value(node.left, row), value(node.right, row))
    if isinstance(node, In):
        subject = value(node.operand, row)
        if _missing(subject):
            return None
        found = any(subject == item.value for item in node.items)
        return found != node.negated
    assert isinstance(node, Between)
    subject, low, high = (value(part, row) for part in (node.operand, node.low, node.high))
    inside = _and(_relation(">=", subject, low), _relation("<=", subject, high))
    return _not(inside) if node.negated else inside


def _and(left: Truth, right: Truth) -> Truth:
    if left is False or right is False:
        return False
    return None if None in (left, right) else True
