"""What the Rules page does, without Streamlit: the rules as tables, publishing versions through the
``rules`` topic (acknowledged, so the page's next read of the topic has them), and a backtest over the
stored transactions."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from confluent_kafka import KafkaException

from fraudstream.config import Settings
from fraudstream.pipeline.backtest_store import load_backtest_period
from fraudstream.pipeline.postgres import DatabaseUnavailable
from fraudstream.pipeline.rules_feed import failed, publish
from fraudstream.rules.backtest import BacktestError, BacktestReport, Progress, backtest
from fraudstream.rules.rule import Draft, Rule, RuleConflict, RuleFieldError, with_enabled
from fraudstream.rules.ruleset import RuleSet, new_versions
from fraudstream.rules.syntax import RuleError

RULE_COLUMNS = ["id", "name", "status", "action", "version", "author", "changed at", "expression"]
HISTORY_COLUMNS = ["version", "changed at", "author", "enabled", "action", "name", "expression", "note"]

# What the page shows as one line of error rather than a traceback.
Refused = (RuleError, RuleConflict, RuleFieldError, KafkaException, DatabaseUnavailable, BacktestError)


def rules_table(ruleset: RuleSet) -> pd.DataFrame:
    """The latest version of every rule, with its status (enabled, disabled, failed: disabled by the
    detector after it failed at run time, or invalid)."""
    rows = [
        {
            "id": rule.id,
            "name": rule.name,
            "status": _status(ruleset, rule),
            "action": rule.action,
            "version": rule.version,
            "author": rule.author,
            "changed at": rule.created_at,
            "expression": rule.expression,
        }
        for rule in ruleset.latest.values()
    ]
    return pd.DataFrame(rows, columns=RULE_COLUMNS)


def _status(ruleset: RuleSet, rule: Rule) -> str:
    if rule.id in ruleset.invalid:
        return "invalid"
    return "enabled" if rule.enabled else "failed" if failed(rule) else "disabled"


def failures(ruleset: RuleSet) -> list[str]:
    """One line per rule the detector disabled after it failed at run time, with the error."""
    return [
        f"{rule.id} was disabled by the {rule.author} (v{rule.version}): {rule.note}"
        for rule in ruleset.latest.values()
        if failed(rule)
    ]


def history_table(versions: tuple[Rule, ...]) -> pd.DataFrame:
    """A rule's versions, newest first."""
    rows = [
        {
            "version": rule.version,
            "changed at": rule.created_at,
            "author": rule.author,
            "enabled": rule.enabled,
            "action": rule.action,
            "name": rule.name,
            "expression": rule.expression,
            "note": rule.note,
        }
        for rule in reversed(versions)
    ]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def publish_draft(settings: Settings, ruleset: RuleSet, draft: Draft, author: str) -> Rule:
    """Publish the version ``draft`` makes of ``ruleset`` (a new rule, or an edit when it carries an id).
    Raises one of ``Refused``."""
    [version] = new_versions(ruleset, [draft], author)
    publish(settings, version)
    return version


def publish_enabled(settings: Settings, ruleset: RuleSet, rule_id: str, enabled: bool, author: str) -> Rule:
    """Publish the next version of a rule, enabled or disabled."""
    current = ruleset.get(rule_id)
    if current is None:
        raise RuleConflict(f"no rule {rule_id!r}")
    version = with_enabled(current, enabled, author)
    publish(settings, version)
    return version


def run_backtest(
    settings: Settings, rule: Rule, since: datetime, until: datetime, progress: Progress | None = None
) -> BacktestReport:
    """The backtest of ``rule`` over [since, until), read with the UI's read-only role."""
    period = load_backtest_period(settings.pg_reader_dsn, since, until)
    return backtest(rule, period.stored, since, until, period.labels, period.notes, progress)
