"""Rule files (YAML or TOML): one rule, or several under ``rules``, each read as a ``Draft`` and checked.

name = "Large online night spend"          # TOML; in YAML the same keys
expression = "cat_id in ['shopping_net', 'misc_net'] and is_night = 1 and amount > 500"
action = "review"                          # block | review | allow
id = "night-online"                        # optional: the id of the rule it edits
enabled = true                             # optional: a new rule starts disabled
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import msgspec
import yaml

from fraudstream.rules.rule import Draft, RuleConflict
from fraudstream.rules.ruleset import RuleSet, new_versions, ruleset_of
from fraudstream.rules.syntax import RuleError
from fraudstream.rules.types import check

MAX_FILE_BYTES = 1_000_000


class RuleFileError(ValueError):
    """A rule file that cannot be read or holds an invalid rule; the message says which and why."""


def load_drafts(path: Path | str) -> list[Draft]:
    """Every rule of the file, each validated (fields and expression); raises ``RuleFileError``."""
    path = Path(path)
    documents = _documents(path)
    drafts = []
    for number, document in enumerate(documents, start=1):
        where = f"{path}" if len(documents) == 1 else f"{path}, rule {number}"
        try:
            draft = msgspec.convert(document, Draft)
        except msgspec.ValidationError as error:
            raise RuleFileError(f"{where}: {error}") from error
        try:
            check(draft.expression)
        except RuleError as error:
            raise RuleFileError(f"{where} ({draft.name}): {error}") from error
        drafts.append(draft)
    return drafts


def ruleset_from_file(path: Path | str, author: str = "file") -> RuleSet:
    """The rules of a file as a rule set: each enabled unless it says ``enabled = false``."""
    drafts = [
        msgspec.structs.replace(draft, enabled=draft.enabled is not False) for draft in load_drafts(path)
    ]
    try:
        return ruleset_of(new_versions(RuleSet(), drafts, author))
    except RuleConflict as error:
        raise RuleFileError(f"{path}: {error}") from error


def _documents(path: Path) -> list[object]:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise RuleFileError(f"{path}: larger than {MAX_FILE_BYTES:,} bytes")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix.lower() == ".toml":
            content: object = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            content = yaml.safe_load(text)
        else:
            raise RuleFileError(f"{path}: a rule file is .yaml, .yml or .toml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise RuleFileError(f"{path}: not valid {path.suffix[1:].upper()}: {error}") from error
    if isinstance(content, dict) and set(content) == {"rules"}:
        content = content["rules"]
    documents = content if isinstance(content, list) else [content]
    if not documents or not all(isinstance(document, dict) for document in documents):
        raise RuleFileError(
            f"{path}: expected a rule (name, expression, action) or a list of them under 'rules'"
        )
    return documents
