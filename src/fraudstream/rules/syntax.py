"""The rule language's text to an expression tree: a hand-written tokenizer and recursive-descent parser.

Grammar, loosest binding first (keywords are case-insensitive, names are not)::

    expression := conjunction ('or' conjunction)*
    conjunction := negation ('and' negation)*
    negation   := 'not' negation | comparison
    comparison := sum [ ('=' | '==' | '!=' | '<' | '<=' | '>' | '>=') sum
                      | ['not'] 'in' '[' literal (',' literal)* [','] ']'
                      | ['not'] 'between' sum 'and' sum ]
    sum        := product (('+' | '-') product)*
    product    := unary (('*' | '/') unary)*
    unary      := '-' unary | primary
    primary    := number | 'text' | true | false | name | '(' expression ')'
    literal    := ['-'] number | 'text' | true | false

Hostile text is refused with a ``RuleError`` before it can cost anything: the text's length, the
nesting of the tree and the size of an ``in`` list are bounded, and the parser recurses only on
parentheses and prefix operators, counting as it goes, so no input reaches Python's recursion limit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

MAX_RULE_LENGTH = 2000
MAX_DEPTH = 40
MAX_LIST_ITEMS = 200
SHOWN_WIDTH, SHOWN_BEFORE = 100, 40  # of a rule's line under an error message

KEYWORDS = frozenset({"and", "or", "not", "in", "between", "true", "false"})
COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")
_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<text>'(?:[^']|'')*')
      | (?P<op>==|!=|<=|>=|[=<>+\-*/()\[\],])""",
    re.VERBOSE,
)


class RuleError(ValueError):
    """A refused rule: the message, and where in the text the problem is (``start``..``end``)."""

    def __init__(self, message: str, text: str, start: int, end: int | None = None) -> None:
        self.message, self.text = message, text
        self.start = max(0, min(start, len(text)))
        self.end = max(self.start + 1, min(end if end is not None else start + 1, len(text) + 1))
        super().__init__(self.pointed())

    def pointed(self) -> str:
        """The message, then the rule's line with a caret line under the problem."""
        line_start = self.text.rfind("\n", 0, self.start) + 1
        line_end = self.text.find("\n", self.start)
        line_end = len(self.text) if line_end < 0 else line_end
        line_number = self.text.count("\n", 0, self.start) + 1
        column = self.start - line_start
        where = f"line {line_number}, column {column + 1}" if "\n" in self.text else f"column {column + 1}"
        line = self.text[line_start:line_end].replace("\t", " ")
        left = max(0, column - SHOWN_BEFORE)  # a long line is shown around the problem only
        shown = ("..." if left else "") + line[left : left + SHOWN_WIDTH]
        shown += "..." if left + SHOWN_WIDTH < len(line) else ""
        offset = column - left + (3 if left else 0)
        width = max(1, min(self.end - self.start, left + SHOWN_WIDTH - column + 1, line_end + 1 - self.start))
        return f"{self.message} (at {where})\n  {shown}\n  {' ' * offset}{'^' * width}"


@dataclass(frozen=True)
class Token:
    kind: str  # number, name, keyword, text, op, end
    value: str
    start: int
    end: int


@dataclass(frozen=True)
class Node:
    start: int = field(kw_only=True)
    end: int = field(kw_only=True)


@dataclass(frozen=True)
class Number(Node):
    value: float


@dataclass(frozen=True)
class Text(Node):
    value: str


@dataclass(frozen=True)
class Boolean(Node):
    value: bool


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Negative(Node):
    operand: Node


@dataclass(frozen=True)
class Arithmetic(Node):
    op: str  # + - * /
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare(Node):
    op: str  # one of COMPARISONS
    left: Node
    right: Node


@dataclass(frozen=True)
class In(Node):
    operand: Node
    items: tuple[Number | Text | Boolean, ...]
    negated: bool


@dataclass(frozen=True)
class Between(Node):
    operand: Node
    low: Node
    high: Node
    negated: bool


@dataclass(frozen=True)
class Not(Node):
    operand: Node


@dataclass(frozen=True)
class And(Node):
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or(Node):
    items: tuple[Node, ...]


Literal = Number | Text | Boolean


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Negative | Not):
        return (node.operand,)
    if isinstance(node, Arithmetic | Compare):
        return (node.left, node.right)
    if isinstance(node, In):
        return (node.operand, *node.items)
    if isinstance(node, Between):
        return (node.operand, node.low, node.high)
    if isinstance(node, And | Or):
        return node.items
    return ()


def tokenize(text: str) -> list[Token]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            character = text[position]
            hint = "; texts take single quotes" if character == '"' else ""
            if character == "'":
                raise RuleError("unterminated text: a ' is never closed", text, position, len(text))
            raise RuleError(f"unexpected character {character!r}{hint}", text, position)
        kind, value = match.lastgroup or "", match.group()
        if kind == "name" and value.lower() in KEYWORDS:
            kind, value = "keyword", value.lower()
        if kind != "space":
            tokens.append(Token(kind, value, match.start(), match.end()))
        position = match.end()
    tokens.append(Token("end", "", len(text), len(text)))
    return tokens


def parse(text: str) -> Node:
    """The expression tree of ``text``; raises ``RuleError`` pointing at the first problem."""
    if len(text) > MAX_RULE_LENGTH:
        raise RuleError(
            f"the rule is {len(text):,} characters long; the limit is {MAX_RULE_LENGTH:,}",
            text,
            MAX_RULE_LENGTH,
            len(text),
        )
    if not text.strip():
        raise RuleError("the rule is empty", text, 0)
    tree = _Parser(text, tokenize(text)).parse()
    _check_depth(tree, text)
    return tree


def _check_depth(tree: Node, text: str) -> None:
    """Refuse trees deeper than MAX_DEPTH (e.g. ``a + a + ... + a``), walked without recursion."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep(text, node.start, node.end)
        stack.extend((child, depth + 1) for child in children(node))


def _too_deep(text: str, start: int, end: int) -> RuleError:
    message = f"the rule nests deeper than {MAX_DEPTH} levels; split it or simplify it"
    return RuleError(message, text, start, end)


def describe(token: Token) -> str:
    return "the end of the rule" if token.kind == "end" else repr(token.value)


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text, self.tokens, self.index, self.depth = text, tokens, 0, 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def at(self, kind: str, *values: str) -> bool:
        return self.token.kind == kind and (not values or self.token.value in values)

    def expect(self, kind: str, value: str, what: str) -> Token:
        if not self.at(kind, value):
            raise self.error(f"expected {what}, found {describe(self.token)}")
        return self.advance()

    def error(self, message: str, token: Token | None = None) -> RuleError:
        token = token or self.token
        return RuleError(message, self.text, token.start, token.end)

    @contextmanager
    def nested(self, token: Token) -> Iterator[None]:
        """One level deeper while parsing what ``token`` opens; refused beyond MAX_DEPTH."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _too_deep(self.text, token.start, token.end)
        yield
        self.depth -= 1

    def parse(self) -> Node:
        tree = self.expression()
        if not self.at("end"):
            raise self.error(
                f"unexpected {describe(self.token)}; expected an operator or the end of the rule"
            )
        return tree

    def expression(self) -> Node:
        return self.joined("or", self.conjunction, Or)

    def conjunction(self) -> Node:
        return self.joined("and", self.negation, And)

    def joined(self, keyword: str, operand: Callable[[], Node], node: type[And | Or]) -> Node:
        """``operand (keyword operand)*`` as one n-ary ``node``, or the operand alone."""
        items = [operand()]
        while self.at("keyword", keyword):
            self.advance()
            items.append(operand())
        return items[0] if len(items) == 1 else node(tuple(items), start=items[0].start, end=items[-1].end)

    def negation(self) -> Node:
        return self.prefixed(self.negation, Not) if self.at("keyword", "not") else self.comparison()

    def prefixed(self, operand: Callable[[], Node], node: type[Not | Negative]) -> Node:
        """The prefix token at hand and its ``operand`` as one ``node``."""
        token = self.advance()
        with self.nested(token):
            inner = operand()
        return node(inner, start=token.start, end=inner.end)

    def comparison(self) -> Node:
        left = self.sum()
        if self.at("op", "==", *COMPARISONS):
            op = self.advance().value
            right = self.sum()
            if self.at("op", "==", *COMPARISONS):
                raise self.error("comparisons cannot be chained; join them with 'and'")
            return Compare("=" if op == "==" else op, left, right, start=left.start, end=right.end)
        negated = self.at("keyword", "not") and self.tokens[self.index + 1].value in ("in", "between")
        if negated:
            self.advance()
        if self.at("keyword", "in"):
            self.advance()
            items, end = self.items()
            return In(left, items, negated, start=left.start, end=end)
        if self.at("keyword", "between"):
            self.advance()
            low = self.sum()
            self.expect("keyword", "and", "'and' between the two bounds")
            high = self.sum()
            return Between(left, low, high, negated, start=left.start, end=high.end)
        return left

    def items(self) -> tuple[tuple[Literal, ...], int]:
        self.expect("op", "[", "'[' opening the list")
        items: list[Literal] = []
        while not self.at("op", "]"):
            if len(items) == MAX_LIST_ITEMS:
                raise self.error(f"the list has more than {MAX_LIST_ITEMS} items")
            items.append(self.literal())
            if not self.at("op", "]"):
                self.expect("op", ",", "',' or ']' in the list")
        if not items:
            raise self.error("the list is empty")
        return tuple(items), self.advance().end

    def literal(self) -> Literal:
        token = self.token
        if self.at("op", "-") and self.tokens[self.index + 1].kind == "number":
            self.advance()
            number = self.advance()
            return Number(-float(number.value), start=token.start, end=number.end)
        node = self.primary() if token.kind in ("number", "text", "keyword") else None
        if not isinstance(node, Number | Text | Boolean):
            raise self.error(
                f"list items are numbers, 'texts', true or false; found {describe(token)}", token
            )
        return node

    def sum(self) -> Node:
        return self.arithmetic(("+", "-"), self.product)

    def product(self) -> Node:
        return self.arithmetic(("*", "/"), self.unary)

    def arithmetic(self, ops: tuple[str, str], operand: Callable[[], Node]) -> Node:
        """``operand (op operand)*``, left-associative."""
        left = operand()
        while self.at("op", *ops):
            op = self.advance().value
            right = operand()
            left = Arithmetic(op, left, right, start=left.start, end=right.end)
        return left

    def unary(self) -> Node:
        return self.prefixed(self.unary, Negative) if self.at("op", "-") else self.primary()

    def primary(self) -> Node:
        token = self.advance()
        span = {"start": token.start, "end": token.end}
        if token.kind == "number":
            return Number(float(token.value), **span)
        if token.kind == "text":
            return Text(token.value[1:-1].replace("''", "'"), **span)
        if token.kind == "name":
            return Name(token.value, **span)
        if token.kind == "keyword" and token.value in ("true", "false"):
            return Boolean(token.value == "true", **span)
        if token.kind == "op" and token.value == "(":
            with self.nested(token):
                inner = self.expression()
            close = self.expect("op", ")", "')' closing the '(' at column " + str(token.start + 1))
            return _respan(inner, token.start, close.end)
        raise self.error(f"expected a value, found {describe(token)}", token)


def _respan(node: Node, start: int, end: int) -> Node:
    """``node`` spanning its parentheses too, so errors about it underline them."""
    values = {name: getattr(node, name) for name in node.__dataclass_fields__ if name not in ("start", "end")}
    return type(node)(**values, start=start, end=end)
