"""`fraudstream rules ...` and `score --rules` as a user runs them, on the session's Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import numpy as np
import pandas as pd
import pytest

from fraudstream.config import Settings
from fraudstream.infra.topics import ensure_topics
from fraudstream.pipeline.rules_feed import read_rules
from tests.helpers import end_offsets
from tests.unit.transactions import synthetic, transactions

pytestmark = pytest.mark.integration

RULES_TOML = """
[[rules]]
name = "Big online spend"
expression = "amount > 500 and cat_id in ['shopping_net', 'misc_net']"
action = "block"
enabled = true

[[rules]]
name = "Night burst"
expression = "n_1h >= 2"
action = "review"
"""
INVALID_YAML = """
rules:
  - name: Fine
    expression: amount > 1
    action: review
  - name: Typo
    expression: amount > 1 and cat = 'home'
    action: block
"""


@pytest.fixture
def settings(stack_settings: Settings) -> Settings:
    own = stack_settings.model_copy(update={"topic_rules": f"rules-{uuid.uuid4().hex[:8]}"})
    ensure_topics(own)
    return own


def fraudstream(settings: Settings, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fraudstream", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, **settings.environment(), "COLUMNS": "200"},
        timeout=120,
    )


def end_offset(settings: Settings) -> int:
    return end_offsets(settings, settings.topic_rules)[0]


def test_add_enable_disable_list_and_history(settings, tmp_path):
    (tmp_path / "rules.toml").write_text(RULES_TOML)

    added = fraudstream(settings, "rules", "add", str(tmp_path / "rules.toml"), "--author", "ana")
    enabled = fraudstream(settings, "rules", "enable", "night-burst", "--author", "bob")
    disabled = fraudstream(settings, "rules", "disable", "big-online-spend", "--note", "too noisy")
    again = fraudstream(settings, "rules", "disable", "big-online-spend")
    listed = fraudstream(settings, "rules", "list")
    history = fraudstream(settings, "rules", "history", "big-online-spend")

    assert added.returncode == 0, added.stderr
    assert "published big-online-spend v1 (enabled, block)" in added.stderr
    assert "published night-burst v1 (disabled, review)" in added.stderr
    assert "published night-burst v2 (enabled, review)" in enabled.stderr
    assert "published big-online-spend v2 (disabled, block)" in disabled.stderr
    assert "big-online-spend v2 is disabled already" in again.stderr
    assert listed.returncode == 0 and "night-burst" in listed.stdout and "n_1h >= 2" in listed.stdout
    assert "too noisy" in history.stdout
    ruleset = read_rules(settings, timeout=20)
    assert [compiled.rule.id for compiled in ruleset.active] == ["night-burst"]
    assert ruleset.get("night-burst").author == "bob"


def test_an_invalid_rule_is_refused_with_its_pointed_message_and_nothing_is_published(settings, tmp_path):
    (tmp_path / "rules.yaml").write_text(INVALID_YAML)

    result = fraudstream(settings, "rules", "add", str(tmp_path / "rules.yaml"))

    assert result.returncode == 1
    assert f"{tmp_path / 'rules.yaml'}, rule 2 (Typo): unknown name 'cat'; did you mean" in result.stderr
    assert "  amount > 1 and cat = 'home'\n                 ^^^" in result.stderr
    assert "nothing was published" in result.stderr
    assert end_offset(settings) == 0


def test_an_unknown_rule_cannot_be_enabled(settings):
    result = fraudstream(settings, "rules", "enable", "nope")

    assert result.returncode == 1 and "no rule 'nope'" in result.stderr


def test_backtest_of_a_rule_file_over_stored_transactions(settings, tmp_path):
    rows = [
        (11, "1991-03-01 10:00", "shopping_net", 900.0),
        (11, "1991-03-01 10:20", "shopping_net", 20.0),
        (12, "1991-03-02 09:00", "home", 700.0),
    ]
    records = transactions(rows).to_dict("records")
    ids = [str(uuid.uuid4()) for _ in rows]

    async def insert() -> None:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            await connection.executemany(
                "INSERT INTO fraud_scores (transaction_id, score, fraud_flag, transaction)"
                " VALUES ($1, $2, $3, $4::jsonb)",
                [(i, 0.1, 0, json.dumps(r)) for i, r in zip(ids, records, strict=True)],
            )
        finally:
            await connection.close()

    asyncio.run(insert())
    (tmp_path / "rule.yaml").write_text("name: Big\nexpression: amount > 500 or n_1h >= 1\naction: review\n")

    result = fraudstream(
        settings,
        "rules",
        "backtest",
        str(tmp_path / "rule.yaml"),
        "--since",
        "1991-03-01",
        "--until",
        "1991-03-03",
    )

    assert result.returncode == 0, result.stderr
    lines = [" ".join(line.replace("│", " ").split()) for line in result.stdout.splitlines()]
    assert "1991-03-01 2 2 2" in lines and "1991-03-02 1 1 1" in lines
    assert "matches 3" in lines and "matches not flagged by the model 3" in lines


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    path = tmp_path / "inputs.csv"
    synthetic(customers=8, days=6, seed=5).drop(columns="target").to_csv(path, index=False)
    return path


def test_offline_scoring_applies_a_rules_file(settings, inputs, tmp_path):
    (tmp_path / "rules.toml").write_text(
        '[[rules]]\nname = "Big"\nexpression = "amount > 100"\naction = "block"\n'
        '[[rules]]\nname = "Small known"\nexpression = "amount < 5"\naction = "allow"\n'
    )

    result = fraudstream(
        settings,
        "score",
        str(inputs),
        "--out",
        str(tmp_path / "out.csv"),
        "--rules",
        str(tmp_path / "rules.toml"),
    )

    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    amount = pd.read_csv(inputs)["amount"].to_numpy()
    assert 0 < (amount > 100).sum() < len(amount) and (amount < 5).any()
    flags = out["fraud_flag"].to_numpy().astype(bool)
    expected = np.where(
        amount > 100, "block", np.where(amount < 5, "allow", np.where(flags, "review", "allow"))
    )
    assert out["decision"].tolist() == expected.tolist()
    assert out.loc[amount > 100, "rules"].map(json.loads).tolist() == [[{"id": "big", "version": 1}]] * int(
        (amount > 100).sum()
    )
    assert set(out.loc[(amount >= 5) & (amount <= 100), "rules"]) == {"[]"}


def test_offline_scoring_with_rules_from_a_missing_topic_is_one_clear_error(settings, inputs, tmp_path):
    result = fraudstream(
        settings, "score", str(inputs), "--out", str(tmp_path / "o.csv"), "--rules", "no-such"
    )

    assert result.returncode == 1
    assert "topic no-such does not exist" in result.stderr
    assert not Path(tmp_path / "o.csv").exists()
