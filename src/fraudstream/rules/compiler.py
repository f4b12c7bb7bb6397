"""A checked rule to a function of a whole batch's columns, returning the boolean mask of its matches.

Semantics (the row-by-row reference in the tests is written from this, independently):

- numbers are float64; ``x / 0`` is missing (NaN), like a ratio without history (``amount_to_mean``);
- a comparison, ``in`` or ``between`` with a missing number is *unknown*, and ``not`` of unknown stays
  unknown (SQL's three-valued logic); a rule matches only the rows where it is true. So a missing value
  never matches, whichever way the condition is written: ``not (x > 1)`` matches what ``x <= 1`` does.
  Implemented by pushing ``not`` down to the comparisons once, at compile time (De Morgan, and the
  negated operator: ``not (a < b)`` is ``a >= b``), after which unknown is simply false;
- texts compare as Python strings do (``<`` by code points). A text column is factorized once per
  batch; a comparison with literals is computed over its distinct values, then looked up by code.

Everything is computed once per batch and per rule with numpy; nothing runs per row in Python.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

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
)
from fraudstream.rules.types import Expression, Type, type_of

Mask = np.ndarray | bool
Predicate = Callable[["BatchColumns"], Mask]
_Numeric = Callable[["BatchColumns"], np.ndarray | float]

_COMPARE = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_NEGATED = {"=": "!=", "!=": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}
FACTORIZE_FROM = 256  # rows; below, a text column's rows are its "distinct values" as they are
_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul}


class BatchColumns:
    """One batch's columns by name, converted once for every rule that reads them.

    ``sources`` are looked up in order (e.g. the features, the decoded input frame, ``{"score": ...}``).
    """

    def __init__(self, sources: Sequence[Mapping[str, ArrayLike]], rows: int) -> None:
        self.sources, self.rows = sources, rows
        self._numbers: dict[str, np.ndarray] = {}
        self._texts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._booleans: dict[str, np.ndarray] = {}

    def raw(self, name: str) -> ArrayLike:
        for source in self.sources:
            if name in source:
                return source[name]
        raise KeyError(f"the batch has no column {name!r}")

    def number(self, name: str) -> np.ndarray:
        values = self._numbers.get(name)
        if values is None:
            values = self._numbers[name] = _checked(name, np.asarray(self.raw(name), dtype=np.float64), self)
        return values

    def boolean(self, name: str) -> np.ndarray:
        values = self._booleans.get(name)
        if values is None:
            values = self._booleans[name] = _checked(name, np.asarray(self.raw(name), dtype=bool), self)
        return values

    def text(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(codes, distinct values as an object array) of a text column; code -1 (missing) never matches."""
        found = self._texts.get(name)
        if found is None:
            found = self._texts[name] = _codes(name, self.raw(name), self)
        return found

    def text_values(self, name: str) -> np.ndarray:
        """A text column as an object array (None where missing)."""
        codes, uniques = self.text(name)
        return np.append(uniques, None)[codes]


def _codes(name: str, raw: ArrayLike, columns: BatchColumns) -> tuple[np.ndarray, np.ndarray]:
    if columns.rows < FACTORIZE_FROM:  # a small batch: each row its own "distinct value", -1 if missing
        values = _checked(name, np.asarray(raw, dtype=object), columns)
        return np.where(pd.isna(values), -1, np.arange(columns.rows)), values
    codes, uniques = pd.factorize(pd.Series(raw))
    return _checked(name, codes, columns), np.asarray(uniques, dtype=object)


def _checked(name: str, values: np.ndarray, columns: BatchColumns) -> np.ndarray:
    if values.shape != (columns.rows,):
        raise ValueError(f"column {name!r} has shape {values.shape}, expected ({columns.rows},)")
    return values


def compile_rule(expression: Expression) -> Predicate:
    """The function computing ``expression``'s mask over a batch (or one bool for a constant rule)."""
    return _predicate(push_negations(expression.tree))


def evaluate(predicate: Predicate, columns: BatchColumns) -> np.ndarray:
    """``predicate``'s mask over the batch as a bool array of ``columns.rows``. Overflows to infinity
    and NaN from infinities are values like any other, not warnings."""
    with np.errstate(all="ignore"):
        return np.broadcast_to(np.asarray(predicate(columns), dtype=bool), (columns.rows,))


def push_negations(node: Node, negate: bool = False) -> Node:
    """``node`` with every ``not`` moved onto a comparison (then removed) or a boolean name."""
    if isinstance(node, Not):
        return push_negations(node.operand, not negate)
    span = {"start": node.start, "end": node.end}
    if isinstance(node, And | Or):
        items = tuple(push_negations(item, negate) for item in node.items)
        flips = isinstance(node, And) == negate
        return Or(items, **span) if flips else And(items, **span)
    if not negate:
        return node
    if isinstance(node, Compare):
        return Compare(_NEGATED[node.op], node.left, node.right, **span)
    if isinstance(node, In):
        return In(node.operand, node.items, not node.negated, **span)
    if isinstance(node, Between):
        return Between(node.operand, node.low, node.high, not node.negated, **span)
    if isinstance(node, Boolean):
        return Boolean(not node.value, **span)
    return Not(node, **span)  # a boolean name: never unknown, so a plain negation


def _predicate(node: Node) -> Predicate:
    if isinstance(node, And | Or):
        parts = [_predicate(item) for item in node.items]
        combine = np.logical_and if isinstance(node, And) else np.logical_or
        return lambda columns: functools.reduce(combine, [part(columns) for part in parts])
    if isinstance(node, Boolean):
        return lambda columns, value=node.value: value
    if isinstance(node, Name):
        return lambda columns, name=node.name: columns.boolean(name)
    if isinstance(node, Not):  # of a boolean name, after push_negations
        inner = _predicate(node.operand)
        return lambda columns: ~inner(columns)
    operand = node.left if isinstance(node, Compare) else node.operand
    kind = type_of(operand)
    if kind is Type.TEXT:
        return _text_predicate(node)
    if kind is Type.BOOLEAN:
        return _boolean_predicate(node)
    return _number_predicate(node)


# Numbers -------------------------------------------------------------------------------------------


def _number(node: Node) -> _Numeric:
    if isinstance(node, Number):
        return lambda columns, value=node.value: value
    if isinstance(node, Name):
        return lambda columns, name=node.name: columns.number(name)
    if isinstance(node, Negative):
        inner = _number(node.operand)
        return lambda columns: -inner(columns)
    assert isinstance(node, Arithmetic)
    left, right = _number(node.left), _number(node.right)
    if node.op == "/":
        return lambda columns: _divide(left(columns), right(columns))
    combine = _ARITHMETIC[node.op]
    return lambda columns: combine(left(columns), right(columns))


def _divide(left: np.ndarray | float, right: np.ndarray | float) -> np.ndarray | float:
    """left / right, missing (NaN) where right is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if np.ndim(right) == 0:
            return left / right if right != 0 else np.full(np.shape(left), np.nan)
        return np.where(right != 0, np.true_divide(left, np.where(right != 0, right, 1)), np.nan)


def _known(*values: np.ndarray | float) -> Mask:
    """Where none of ``values`` is missing."""
    known: Mask = True
    for value in values:
        known = known & ~np.isnan(value)
    return known


def _number_predicate(node: Node) -> Predicate:
    if isinstance(node, Compare):
        left, right = _number(node.left), _number(node.right)
        relation = _COMPARE[node.op]
        if node.op == "!=":  # the only relation that is true for NaN in IEEE arithmetic
            return lambda columns: _different(left(columns), right(columns))
        return lambda columns: relation(left(columns), right(columns))
    if isinstance(node, In):
        operand = _number(node.operand)
        items = np.array([item.value for item in node.items], dtype=np.float64)
        if node.negated:
            return lambda columns: _not_in(operand(columns), items)
        return lambda columns: np.isin(operand(columns), items)
    assert isinstance(node, Between)
    operand, low, high = _number(node.operand), _number(node.low), _number(node.high)
    if node.negated:
        return lambda columns: _outside(operand(columns), low(columns), high(columns))
    return lambda columns: _inside(operand(columns), low(columns), high(columns))


def _different(left: np.ndarray | float, right: np.ndarray | float) -> Mask:
    return (left != right) & _known(left, right)


def _not_in(values: np.ndarray | float, items: np.ndarray) -> Mask:
    return ~np.isin(values, items) & _known(values)


def _inside(values: np.ndarray | float, low: np.ndarray | float, high: np.ndarray | float) -> Mask:
    return (values >= low) & (values <= high)


def _outside(values: np.ndarray | float, low: np.ndarray | float, high: np.ndarray | float) -> Mask:
    return (values < low) | (values > high)


# Texts ---------------------------------------------------------------------------------------------


def _text_predicate(node: Node) -> Predicate:
    """Over the distinct values of the one text column read, then looked up by each row's code; over
    the rows' values when it reads two columns (``merch = one_city``); decided here for literals only."""
    names = sorted(_text_names(node))
    over_values = _over_values(node)
    if not names:
        value = bool(over_values({}))
        return lambda columns: value
    if len(names) == 1:
        name = names[0]

        def by_code(columns: BatchColumns) -> Mask:
            codes, uniques = columns.text(name)
            return np.append(np.asarray(over_values({name: uniques}), dtype=bool), False)[codes]

        return by_code
    return lambda columns: over_values({name: columns.text_values(name) for name in names})


def _text_names(node: Node) -> set[str]:
    operands = [node.left, node.right] if isinstance(node, Compare) else [node.operand]
    if isinstance(node, Between):
        operands += [node.low, node.high]
    return {operand.name for operand in operands if isinstance(operand, Name)}


def _over_values(node: Node) -> Callable[[dict[str, np.ndarray]], Mask]:
    """The predicate over object arrays of texts (numpy compares them as Python's ``str`` does)."""

    def value(operand: Node, arrays: dict[str, np.ndarray]) -> np.ndarray | str:
        return arrays[operand.name] if isinstance(operand, Name) else operand.value

    if isinstance(node, Compare):
        relation = _COMPARE[node.op]
        return lambda arrays: relation(value(node.left, arrays), value(node.right, arrays))
    if isinstance(node, In):
        items = frozenset(item.value for item in node.items)

        def membership(arrays: dict[str, np.ndarray]) -> Mask:
            values = value(node.operand, arrays)
            if isinstance(values, str):
                return (values in items) != node.negated
            found = np.fromiter((text in items for text in values), dtype=bool, count=len(values))
            return ~found if node.negated else found

        return membership
    assert isinstance(node, Between)

    def between(arrays: dict[str, np.ndarray]) -> Mask:
        subject, low, high = (value(part, arrays) for part in (node.operand, node.low, node.high))
        inside = np.logical_and(subject >= low, subject <= high)
        return np.logical_not(inside) if node.negated else inside

    return between


# Booleans ------------------------------------------------------------------------------------------


def _boolean_predicate(node: Node) -> Predicate:
    if isinstance(node, Compare):
        left, right = _predicate(node.left), _predicate(node.right)
        relation = _COMPARE[node.op]
        return lambda columns: relation(np.asarray(left(columns)), np.asarray(right(columns)))
    assert isinstance(node, In)
    operand = _predicate(node.operand)
    items = {item.value for item in node.items}
    matched = {value: (value in items) != node.negated for value in (False, True)}
    if matched[False] == matched[True]:
        return lambda columns: matched[True]
    return lambda columns: operand(columns) if matched[True] else ~np.asarray(operand(columns))
