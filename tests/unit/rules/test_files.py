"""Rule files: YAML and TOML, one rule or several, refused with the file, the rule and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudstream.rules.files import RuleFileError, load_drafts, ruleset_from_file
from fraudstream.rules.rule import Draft


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_one_rule_in_yaml_and_several_in_toml(tmp_path):
    single = write(tmp_path, "one.yaml", "name: Big\nexpression: amount > 1000\naction: block\nid: big-one\n")
    several = write(
        tmp_path,
        "many.toml",
        '[[rules]]\nname = "A"\nexpression = "score > 0.9"\naction = "review"\nenabled = false\n'
        '[[rules]]\nname = "B"\nexpression = "us_state in [\'CA\']"\naction = "allow"\n',
    )

    assert load_drafts(single) == [
        Draft(name="Big", expression="amount > 1000", action="block", id="big-one")
    ]
    assert [(d.name, d.action, d.enabled) for d in load_drafts(several)] == [
        ("A", "review", False),
        ("B", "allow", None),
    ]
    ruleset = ruleset_from_file(several)
    assert [compiled.rule.id for compiled in ruleset.active] == ["b"]  # a file's rules apply unless disabled
    assert sorted(ruleset.history) == ["a", "b"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.yaml", "name: X\naction: block\n", "bad.yaml: Object missing required field `expression`"),
        (
            "bad.yaml",
            "name: X\nexpression: amount > 1\naction: deny\n",
            "Invalid enum value 'deny' - at `$.action`",
        ),
        (
            "bad.yaml",
            "name: X\nexpression: amount > 1\naction: block\ncolour: red\n",
            "unknown field `colour`",
        ),
        ("bad.yaml", "name: X\nexpression: a > 1\naction: block\nid: Not A Slug\n", "at `$.id`"),
        (
            "bad.toml",
            'name = "X"\nexpression = "amount >"\naction = "block"\n',
            "bad.toml (X): expected a value",
        ),
        ("bad.yaml", "name: [unclosed\n", "bad.yaml: not valid YAML"),
        ("bad.toml", "name = \n", "bad.toml: not valid TOML"),
        ("bad.json", "{}", "bad.json: a rule file is .yaml, .yml or .toml"),
        (
            "bad.yaml",
            "- just text\n",
            "expected a rule (name, expression, action) or a list of them under 'rules'",
        ),
    ],
)
def test_invalid_files_are_refused_saying_where_and_why(tmp_path, name, text, message):
    with pytest.raises(RuleFileError) as raised:
        load_drafts(write(tmp_path, name, text))

    assert message in str(raised.value)


def test_an_invalid_second_rule_is_named_with_the_pointed_message(tmp_path):
    path = write(
        tmp_path,
        "rules.yaml",
        "rules:\n  - {name: Ok, expression: amount > 1, action: review}\n"
        "  - {name: Typo, expression: amout > 1, action: block}\n",
    )

    with pytest.raises(RuleFileError) as raised:
        load_drafts(path)

    assert str(raised.value) == (
        f"{path}, rule 2 (Typo): unknown name 'amout'; did you mean amount, amount_7d, amount_1h?"
        " (at column 1)\n"
        "  amout > 1\n"
        "  ^^^^^"
    )


def test_two_rules_of_a_file_with_one_id_are_refused(tmp_path):
    path = write(
        tmp_path,
        "rules.toml",
        '[[rules]]\nname = "Same"\nexpression = "amount > 1"\naction = "block"\n'
        '[[rules]]\nname = "same"\nexpression = "amount > 2"\naction = "block"\n',
    )

    with pytest.raises(RuleFileError, match="more than one rule with the id 'same'"):
        ruleset_from_file(path)
