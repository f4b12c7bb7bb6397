"""The names a rule may read, their types, and the type check every rule passes before it is used.

Names: the transaction's input columns (``contracts.schema``), every feature of ``ml.features``
(which the detector computes for each batch whatever the model reads) and the model's ``score``.
Types: number, text, boolean; a rule as a whole is boolean.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import Enum

from fraudstream.contracts import schema
from fraudstream.ml import features
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
    RuleError,
    Text,
    children,
    parse,
)


class Type(Enum):
    NUMBER = "number"
    TEXT = "text"
    BOOLEAN = "boolean"


SCORE = "score"
BOOLEAN_FEATURES = frozenset({"is_weekend"})


def _vocabulary() -> dict[str, Type]:
    names = {name: Type.NUMBER for name in (*schema.INPUT_COLUMNS, *features.FEATURES, SCORE)}
    names.update(dict.fromkeys(schema.STRING_COLUMNS, Type.TEXT))
    names.update(dict.fromkeys(BOOLEAN_FEATURES, Type.BOOLEAN))
    return names


NAMES: dict[str, Type] = _vocabulary()


@dataclass(frozen=True)
class Expression:
    """A rule's text, parsed and type-checked: its tree and the names it reads."""

    text: str
    tree: Node
    names: frozenset[str]


def check(text: str) -> Expression:
    """Parse ``text`` and check its types; raises ``RuleError`` pointing at the first problem."""
    tree = parse(text)
    kind = _Checker(text).type_of(tree)
    if kind is not Type.BOOLEAN:
        raise RuleError(f"a rule must be true or false; this is a {kind.value}", text, tree.start, tree.end)
    return Expression(text, tree, frozenset(_names(tree)))


def type_of(node: Node) -> Type:
    """The type of a node of a tree that passed ``check``."""
    return _Checker("").type_of(node)


def _names(tree: Node) -> set[str]:
    found, stack = set(), [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Name):
            found.add(node.name)
        stack.extend(children(node))
    return found


def _shown(text: str, node: Node) -> str:
    part = " ".join(text[node.start : node.end].split())
    return part if len(part) <= 40 else part[:37] + "..."


class _Checker:
    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, message: str, node: Node) -> RuleError:
        return RuleError(message, self.text, node.start, node.end)

    def described(self, node: Node, kind: Type) -> str:
        return f"{_shown(self.text, node)} ({kind.value})"

    def type_of(self, node: Node) -> Type:
        if isinstance(node, Number):
            return Type.NUMBER
        if isinstance(node, Text):
            return Type.TEXT
        if isinstance(node, Boolean):
            return Type.BOOLEAN
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Negative):
            self.expect(node.operand, Type.NUMBER, "'-' needs a number")
            return Type.NUMBER
        if isinstance(node, Arithmetic):
            for side in (node.left, node.right):
                self.expect(side, Type.NUMBER, f"'{node.op}' needs numbers on both sides")
            return Type.NUMBER
        if isinstance(node, Not):
            self.expect(node.operand, Type.BOOLEAN, "'not' needs true or false")
            return Type.BOOLEAN
        if isinstance(node, And | Or):
            word = "and" if isinstance(node, And) else "or"
            for item in node.items:
                self.expect(item, Type.BOOLEAN, f"'{word}' joins conditions (true or false)")
            return Type.BOOLEAN
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, In):
            return self.membership(node)
        if isinstance(node, Between):
            return self.between(node)
        raise self.error(f"unsupported expression {type(node).__name__}", node)

    def expect(self, node: Node, wanted: Type, why: str) -> None:
        kind = self.type_of(node)
        if kind is not wanted:
            raise self.error(f"{why}, not {self.described(node, kind)}", node)

    def name(self, node: Name) -> Type:
        kind = NAMES.get(node.name)
        if kind is None:
            close = difflib.get_close_matches(node.name, NAMES, n=3, cutoff=0.6)
            if not close:
                close = difflib.get_close_matches(node.name.lower(), NAMES, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else " (see `fraudstream rules names`)"
            raise self.error(f"unknown name {node.name!r}{hint}", node)
        return kind

    def compare(self, node: Compare) -> Type:
        left, right = self.type_of(node.left), self.type_of(node.right)
        if left is not right:
            raise self.error(
                f"cannot compare {self.described(node.left, left)} with {self.described(node.right, right)}",
                node,
            )
        if left is Type.BOOLEAN:
            if node.op not in ("=", "!="):
                raise self.error(f"'{node.op}' orders numbers or texts; true and false have no order", node)
            self.plain_booleans(node.op, node.left, node.right)
        return Type.BOOLEAN

    def plain_booleans(self, op: str, *operands: Node) -> None:
        """Booleans compare as names or true/false only: conditions combine with and, or, not."""
        for operand in operands:
            if not isinstance(operand, Name | Boolean):
                raise self.error(
                    f"'{op}' compares true/false names and values only; combine conditions with"
                    " 'and', 'or' and 'not'",
                    operand,
                )

    def membership(self, node: In) -> Type:
        kind = self.type_of(node.operand)
        if kind is Type.BOOLEAN:
            self.plain_booleans("in", node.operand)
        for item in node.items:
            item_kind = self.type_of(item)
            if item_kind is not kind:
                raise self.error(
                    f"the list's items must be {kind.value}s like {_shown(self.text, node.operand)},"
                    f" not {self.described(item, item_kind)}",
                    item,
                )
        return Type.BOOLEAN

    def between(self, node: Between) -> Type:
        kind = self.type_of(node.operand)
        if kind is Type.BOOLEAN:
            raise self.error(
                f"'between' needs numbers or texts, not {self.described(node.operand, kind)}", node
            )
        for bound in (node.low, node.high):
            self.expect(bound, kind, f"the bounds of 'between' must be {kind.value}s")
        return Type.BOOLEAN


def names_table() -> list[tuple[str, str]]:
    """Every name a rule may read, with its type, sorted."""
    return sorted((name, kind.value) for name, kind in NAMES.items())


__all__ = ["NAMES", "SCORE", "Expression", "RuleError", "Type", "check", "children", "names_table", "type_of"]
