"""The rule language's parser and type check: what is accepted, and the exact messages of refusals."""

from __future__ import annotations

import pytest

from fraudstream.rules.syntax import (
    MAX_DEPTH,
    MAX_LIST_ITEMS,
    MAX_RULE_LENGTH,
    And,
    Arithmetic,
    Between,
    Compare,
    In,
    Name,
    Not,
    Number,
    Or,
    RuleError,
    Text,
    parse,
)
from fraudstream.rules.types import NAMES, Type, check


def refusal(text: str) -> str:
    with pytest.raises(RuleError) as raised:
        check(text)
    return str(raised.value)


def strip_spans(node):
    """A tree without positions, for comparing shapes."""
    if isinstance(node, Number | Text | Name):
        return (type(node).__name__, getattr(node, "value", getattr(node, "name", None)))
    if isinstance(node, And | Or):
        return (type(node).__name__, *map(strip_spans, node.items))
    if isinstance(node, Compare | Arithmetic):
        return (node.op, strip_spans(node.left), strip_spans(node.right))
    if isinstance(node, Not):
        return ("not", strip_spans(node.operand))
    if isinstance(node, In):
        return ("not in" if node.negated else "in", strip_spans(node.operand), *map(strip_spans, node.items))
    if isinstance(node, Between):
        return ("between", node.negated, *map(strip_spans, (node.operand, node.low, node.high)))
    raise AssertionError(node)


def test_precedence_and_before_or_not_before_and_arithmetic_before_comparison():
    tree = parse("not amount > 1 + 2 * 3 or score >= 0.5 AND cat_id = 'a''b'")

    assert strip_spans(tree) == (
        "Or",
        ("not", (">", ("Name", "amount"), ("+", ("Number", 1.0), ("*", ("Number", 2.0), ("Number", 3.0))))),
        ("And", (">=", ("Name", "score"), ("Number", 0.5)), ("=", ("Name", "cat_id"), ("Text", "a'b"))),
    )


def test_in_not_in_between_and_negative_literals():
    tree = parse("amount not in [1, -2.5e1,] and hour between 22 - 1 and 23 and us_state in ['CA']")

    assert strip_spans(tree) == (
        "And",
        ("not in", ("Name", "amount"), ("Number", 1.0), ("Number", -25.0)),
        ("between", False, ("Name", "hour"), ("-", ("Number", 22.0), ("Number", 1.0)), ("Number", 23.0)),
        ("in", ("Name", "us_state"), ("Text", "CA")),
    )


def test_names_cover_inputs_features_and_score_with_their_types():
    assert NAMES["amount"] is Type.NUMBER and NAMES["cat_id"] is Type.TEXT and NAMES["merch"] is Type.TEXT
    assert NAMES["is_weekend"] is Type.BOOLEAN and NAMES["score"] is Type.NUMBER
    assert {"n_1h", "amount_24h", "amount_to_mean_7d", "hour", "is_night", "home_distance"} <= set(NAMES)
    assert check("is_weekend and not is_night = 1 and n_7d / n_total > 0.5").names == {
        "is_weekend",
        "is_night",
        "n_7d",
        "n_total",
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "amout > 100",
            "unknown name 'amout'; did you mean amount, amount_7d, amount_1h? (at column 1)\n"
            "  amout > 100\n"
            "  ^^^^^",
        ),
        (
            "zzz = 1",
            "unknown name 'zzz' (see `fraudstream rules names`) (at column 1)\n  zzz = 1\n  ^^^",
        ),
        (
            "cat_id = 5",
            "cannot compare cat_id (text) with 5 (number) (at column 1)\n  cat_id = 5\n  ^^^^^^^^^^",
        ),
        (
            "amount * 2",
            "a rule must be true or false; this is a number (at column 1)\n  amount * 2\n  ^^^^^^^^^^",
        ),
        (
            "amount > 1 and cat_id",
            "'and' joins conditions (true or false), not cat_id (text) (at column 16)\n"
            "  amount > 1 and cat_id\n"
            "                 ^^^^^^",
        ),
        (
            "amount + merch > 1",
            "'+' needs numbers on both sides, not merch (text) (at column 10)\n"
            "  amount + merch > 1\n"
            "           ^^^^^",
        ),
        (
            "us_state in ['CA', 3]",
            "the list's items must be texts like us_state, not 3 (number) (at column 20)\n"
            "  us_state in ['CA', 3]\n"
            "                     ^",
        ),
        (
            "is_weekend < true",
            "'<' orders numbers or texts; true and false have no order (at column 1)\n"
            "  is_weekend < true\n"
            "  ^^^^^^^^^^^^^^^^^",
        ),
        (
            "amount > 1 < 2",
            "comparisons cannot be chained; join them with 'and' (at column 12)\n"
            "  amount > 1 < 2\n"
            "             ^",
        ),
        ("amount >", "expected a value, found the end of the rule (at column 9)\n  amount >\n          ^"),
        (
            "(amount > 1",
            "expected ')' closing the '(' at column 1, found the end of the rule (at column 12)\n"
            "  (amount > 1\n"
            "             ^",
        ),
        (
            "amount between 1 or 2",
            "expected 'and' between the two bounds, found 'or' (at column 18)\n"
            "  amount between 1 or 2\n"
            "                   ^^",
        ),
        (
            'cat_id = "food"',
            "unexpected character '\"'; texts take single quotes (at column 10)\n"
            '  cat_id = "food"\n'
            "           ^",
        ),
        (
            "cat_id = 'food",
            "unterminated text: a ' is never closed (at column 10)\n  cat_id = 'food\n           ^^^^^",
        ),
        ("amount in []", "the list is empty (at column 12)\n  amount in []\n             ^"),
        (
            "amount > 1 amount",
            "unexpected 'amount'; expected an operator or the end of the rule (at column 12)\n"
            "  amount > 1 amount\n"
            "             ^^^^^^",
        ),
        (
            "amount > 1\n  and merchnt = 'x'",
            "unknown name 'merchnt'; did you mean merch, merchant_lon, merchant_lat? (at line 2, column 7)\n"
            "    and merchnt = 'x'\n"
            "        ^^^^^^^",
        ),
        ("   ", "the rule is empty (at column 1)\n     \n  ^"),
    ],
)
def test_invalid_rules_are_refused_with_a_pointed_message(text, message):
    assert refusal(text) == message


def test_too_long_a_rule_is_refused_before_it_is_parsed():
    text = "amount > 1 and " * 200

    message = refusal(text)

    assert message.startswith(f"the rule is {len(text):,} characters long; the limit is {MAX_RULE_LENGTH:,}")


@pytest.mark.parametrize(
    "text",
    [
        "(" * 5000 + "amount > 1" + ")" * 5000,
        "not " * 400 + "is_weekend",
        "-" * 1500 + "amount > 1",
        "amount" + " + 1" * 400 + " > 0",
        "amount > " + "(" * 900,
    ],
)
def test_hostile_nesting_is_refused_cleanly_without_recursion_errors(text):
    message = refusal(text[:MAX_RULE_LENGTH])

    assert message.startswith(f"the rule nests deeper than {MAX_DEPTH} levels; split it or simplify it")
    assert len(message.splitlines()[1]) <= 110  # the long line is shown around the problem only


def test_a_list_longer_than_the_limit_is_refused_at_the_first_item_too_many():
    text = "amount in [" + ", ".join(["1"] * (MAX_LIST_ITEMS + 1)) + "]"

    message = refusal(text)

    first_too_many = len("amount in [") + len("1, ") * MAX_LIST_ITEMS + 1
    assert message.startswith(f"the list has more than {MAX_LIST_ITEMS} items (at column {first_too_many})")


def test_keywords_are_case_insensitive_names_are_not():
    assert check("amount > 1 AND NOT is_weekend Or score > 0.5").names == {"amount", "is_weekend", "score"}
    assert refusal("Amount > 1").startswith("unknown name 'Amount'; did you mean amount")
