"""The Rules page under AppTest: on the session's real Kafka and PostgreSQL, and with neither."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date

import asyncpg
import pytest
from streamlit.testing.v1 import AppTest

from fraudstream.config import Settings
from fraudstream.infra.topics import ensure_topics
from fraudstream.pipeline.rules_feed import read_rules
from tests.ui.conftest import Page
from tests.unit.transactions import transactions


@pytest.fixture
def rules_env(monkeypatch: pytest.MonkeyPatch, stack_env: Settings) -> Settings:
    """The stack, with a rules topic of this test's own."""
    own = stack_env.model_copy(update={"topic_rules": f"rules-{uuid.uuid4().hex[:8]}"})
    ensure_topics(own)
    monkeypatch.setenv("FRAUDSTREAM_TOPIC_RULES", own.topic_rules)
    return own


def open_page(page: Page, analyst: str = "ana") -> AppTest:
    app = page("rules_page.py").run()
    app.sidebar.text_input(key="analyst").set_value(analyst).run()
    return app


def create(app: AppTest, name: str, expression: str, action: str = "block", enabled: bool = False) -> AppTest:
    app.text_input(key="new_rule_name").set_value(name)
    app.text_area(key="new_rule_expression").set_value(expression)
    app.selectbox(key="new_rule_action").set_value(action)
    app.checkbox(key="new_rule_enabled").set_value(enabled)
    return app.button(key="new_rule_submit").click().run()


def test_without_kafka_the_page_says_so(page, nothing_env):
    app = page("rules_page.py").run()

    assert not app.exception
    assert f"Kafka at 127.0.0.1:{nothing_env.kafka_bootstrap_servers.rpartition(':')[2]} is unavailable" in (
        app.error[0].value
    )


@pytest.mark.integration
def test_a_created_rule_is_listed_published_and_has_its_history(page, rules_env):
    app = create(
        open_page(page), "Big online spend", "amount > 500 and cat_id = 'shopping_net'", enabled=True
    )

    assert not app.exception and not app.error
    assert app.success[0].value == "Created big-online-spend v1 (enabled)."
    listed = app.dataframe[0].value
    assert listed[["id", "status", "action", "version", "author"]].values.tolist() == [
        ["big-online-spend", "enabled", "block", 1, "ana"]
    ]
    assert read_rules(rules_env, timeout=20).get("big-online-spend").expression == (
        "amount > 500 and cat_id = 'shopping_net'"
    )

    app.button(key="disable_rule").click().run()
    app.text_area(key="edit_big-online-spend_expression").set_value("amount > 900")
    app.button(key="edit_big-online-spend_submit").click().run()

    history = app.dataframe[1].value
    assert history[["version", "enabled", "expression"]].values.tolist() == [
        [3, False, "amount > 900"],
        [2, False, "amount > 500 and cat_id = 'shopping_net'"],
        [1, True, "amount > 500 and cat_id = 'shopping_net'"],
    ]
    assert app.success[0].value == "Saved big-online-spend v3."


@pytest.mark.integration
def test_an_invalid_rule_shows_the_pointed_message_and_is_not_published(page, rules_env):
    app = create(open_page(page), "Typo", "amount > 1 and merchnt = 'x'")

    assert not app.exception
    assert app.error[0].value == (
        "The rule is refused:\n```\n"
        "unknown name 'merchnt'; did you mean merch, merchant_lon, merchant_lat? (at column 16)\n"
        "  amount > 1 and merchnt = 'x'\n"
        "                 ^^^^^^^\n```"
    )
    assert read_rules(rules_env, timeout=20).history == {}


@pytest.mark.integration
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(" * 3000, "the rule is 3,000 characters long; the limit is 2,000"),
        ("not " * 450 + "is_weekend", "the rule nests deeper than 40 levels"),
        ("amount in [" + "1," * 300 + "1]", "the list has more than 200 items"),
    ],
)
def test_hostile_text_is_refused_cleanly(page, rules_env, text, message):
    app = create(open_page(page), "Hostile", text)

    assert not app.exception
    assert message in app.error[0].value


@pytest.mark.integration
def test_without_an_analyst_nothing_can_be_created(page, rules_env):
    app = page("rules_page.py").run()

    assert "Enter your name as **Analyst**" in app.info[0].value
    assert app.button(key="new_rule_submit").disabled


@pytest.mark.integration
def test_the_backtest_panel_charts_matches_per_day(page, rules_env):
    rows = [
        (21, "1992-05-01 10:00", "shopping_net", 900.0),
        (21, "1992-05-02 10:00", "shopping_net", 950.0),
        (22, "1992-05-02 11:00", "home", 20.0),
    ]
    records = transactions(rows).to_dict("records")

    async def insert() -> None:
        connection = await asyncpg.connect(rules_env.pg_dsn)
        try:
            await connection.executemany(
                "INSERT INTO fraud_scores (transaction_id, score, fraud_flag, transaction)"
                " VALUES ($1, $2, $3, $4::jsonb)",
                [(str(uuid.uuid4()), 0.9, 1 if r["amount"] > 925 else 0, json.dumps(r)) for r in records],
            )
        finally:
            await connection.close()

    asyncio.run(insert())
    app = create(open_page(page), "Big", "amount > 800")

    app.date_input(key="backtest_period").set_value((date(1992, 5, 1), date(1992, 5, 2))).run()
    app.button(key="run_backtest").click().run()

    assert not app.exception and not app.error
    metrics = {metric.label: metric.value for metric in app.metric}
    assert (metrics["Transactions"], metrics["Matches"], metrics["Not flagged by the model"]) == (
        "3",
        "2",
        "1",
    )
    [chart] = app.get("vega_lite_chart")
    assert '"field": "matches"' in chart.proto.spec and '"field": "kind"' in chart.proto.spec
    assert metrics["Precision (labelled)"] == "n/a"  # none of these transactions is labelled
