"""The stream applies the rules: a detector and a sink of their own (scoped topics, real Kafka and
PostgreSQL), the rules published to their rules topic while they run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from prometheus_client import REGISTRY

from fraudstream.config import Settings
from fraudstream.contracts.schema import read_csv
from fraudstream.infra.topics import ensure_topics
from fraudstream.ops.supervisor import ServiceProcess
from fraudstream.pipeline.detector.rules import AUTHOR, RuleStage
from fraudstream.pipeline.producer import TransactionProducer
from fraudstream.pipeline.rules_feed import RuleFeed, publish
from fraudstream.rules.rule import Draft, Rule, version_of, with_enabled
from tests.helpers import (
    count_rows,
    end_offsets,
    fetch_scores,
    running_pipeline,
    wait_for,
    with_fresh_customers,
)

pytestmark = pytest.mark.integration

RULES_FILE = """
rules:
  - name: Big spend on the net
    expression: "amount > 60 and cat_id in ['grocery_pos', 'shopping_pos', 'misc_pos']"
    action: block
    enabled: true
  - name: Night owl
    expression: "is_night = 1 and home_distance > 0.5"
    action: review
    enabled: true
  - name: Small and calm
    expression: "amount < 20 and score < 0.9"
    action: allow
    enabled: true
  - name: Not yet
    expression: "amount > 1"
    action: block
    enabled: false
"""


@pytest.fixture(scope="module")
def scoped(stack_settings: Settings) -> Settings:
    settings = stack_settings.scoped(f"rules-{uuid.uuid4().hex[:6]}")
    ensure_topics(settings)
    return settings


@pytest.fixture(scope="module")
def pipeline(scoped: Settings) -> Iterator[dict[str, ServiceProcess]]:
    with running_pipeline(scoped, instance="rules") as services:
        yield services


def applied_offset(detector: ServiceProcess) -> int:
    """The rules topic's offset the detector applies from its next batch on (its /healthz)."""
    return ((detector.health() or {}).get("rules") or {}).get("offset", -1)


def publish_and_wait(settings: Settings, detector: ServiceProcess, version: Rule) -> None:
    offset = publish(settings, version)
    wait_for(
        lambda: applied_offset(detector) >= offset, 30, f"the detector at rules offset {offset}", detector
    )


def send(settings: Settings, frame: pd.DataFrame, services: dict[str, ServiceProcess]) -> pd.DataFrame:
    """Send ``frame``; its stored rows once all are stored, in the frame's order."""
    sent = TransactionProducer(settings).send(frame).transaction_ids
    wait_for(lambda: count_rows(settings, sent) == len(sent), 60, f"{len(sent)} rows", *services.values())
    return fetch_scores(settings, sent).loc[sent]


def ids_of(stored: pd.DataFrame) -> list[set[str]]:
    return [{rule["id"] for rule in json.loads(rules)} for rules in stored["rules"]]


def test_the_stream_decides_as_offline_scoring_does(scoped, pipeline, new_small, tmp_path):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES_FILE)
    frame = with_fresh_customers(read_csv(new_small), "same")
    frame.to_csv(tmp_path / "fresh.csv", index=False)
    env = {**os.environ, **scoped.environment()}
    command = [sys.executable, "-m", "fraudstream"]
    added = subprocess.run(
        [*command, "rules", "add", str(rules_file)], env=env, capture_output=True, text=True
    )
    assert added.returncode == 0, added.stderr
    last = end_offsets(scoped, scoped.topic_rules)[0] - 1
    wait_for(lambda: applied_offset(pipeline["detector"]) >= last, 30, "the rules read", *pipeline.values())

    stored = send(scoped, frame, pipeline)
    offline = subprocess.run(
        [
            *command,
            "score",
            str(tmp_path / "fresh.csv"),
            "--out",
            str(tmp_path / "out.csv"),
            "--rules",
            str(rules_file),
        ],
        env=env,
        capture_output=True,
        text=True,
    )

    assert offline.returncode == 0, offline.stderr
    scored = pd.read_csv(tmp_path / "out.csv")
    assert stored["decision"].tolist() == scored["decision"].tolist()
    assert [json.loads(rules) for rules in stored["rules"]] == [
        json.loads(rules) for rules in scored["rules"]
    ]
    assert np.array_equal(stored["fraud_flag"].to_numpy(), scored["fraud_flag"].to_numpy())
    assert set(stored["decision"]) == {"block", "review", "allow"}  # the rules file exercises each
    matched = set().union(*ids_of(stored))
    assert matched == {"big-spend-on-the-net", "night-owl", "small-and-calm"}


def test_a_rule_applies_to_transactions_after_it_and_stops_when_disabled(scoped, pipeline, new_small):
    draft = Draft(
        name="Every merchant", expression="merch >= 'fraud_' and amount > 0", action="block", enabled=True
    )
    rule = version_of(draft, None, "ana")
    before = send(scoped, with_fresh_customers(read_csv(new_small), "before"), pipeline)
    publish_and_wait(scoped, pipeline["detector"], rule)
    during = send(scoped, with_fresh_customers(read_csv(new_small), "during"), pipeline)
    publish_and_wait(scoped, pipeline["detector"], with_enabled(rule, False, "ana"))
    after = send(scoped, with_fresh_customers(read_csv(new_small), "after"), pipeline)

    assert not any(rule.id in ids for ids in ids_of(before))
    assert all(rule.id in ids for ids in ids_of(during))
    assert set(during["decision"]) == {"block"}
    assert [r for r in json.loads(during["rules"].iloc[0]) if r["id"] == rule.id] == [
        {"id": rule.id, "version": 1}
    ]
    assert not any(rule.id in ids for ids in ids_of(after))
    assert (before["fraud_flag"].to_numpy() == during["fraud_flag"].to_numpy()).all()  # the model's flag


def test_a_rule_failing_at_run_time_is_disabled_through_the_topic_and_the_batch_decided(scoped):
    """The detector's rule stage on the real topic. A valid rule over the detector's complete columns
    cannot fail, so the failure is made as in the ruleset's tests: a batch without a column it reads."""
    settings = scoped.model_copy(update={"topic_rules": f"{scoped.topic_rules}-failing"})
    ensure_topics(settings)
    breaks = version_of(
        Draft(name="Breaks", expression="n_24h > 1", action="block", enabled=True), None, "ana"
    )
    big = version_of(Draft(name="Big", expression="amount > 900", action="block", enabled=True), None, "ana")
    for version in (breaks, big):
        publish(settings, version)
    feed = RuleFeed(settings).start(timeout=20)
    failures_before = REGISTRY.get_sample_value("fraudstream_rule_failures_total", {"rule": "breaks"}) or 0
    try:
        stage = RuleStage(settings, feed)
        frame = pd.DataFrame({"amount": [5.0, 950.0, 20.0]})
        decided = stage.decide({}, frame, np.array([0.1, 0.2, 0.9]), np.array([0, 0, 1]))

        assert decided.decisions.tolist() == ["allow", "block", "review"]
        assert decided.matched[1] == ({"id": "big", "version": 1},)
        assert (
            REGISTRY.get_sample_value("fraudstream_rule_failures_total", {"rule": "breaks"})
            == failures_before + 1
        )
        wait_for(lambda: not feed.rules.get("breaks").enabled, 20, "the failed rule disabled")
        disabled = feed.rules.get("breaks")
        assert (disabled.version, disabled.author) == (2, AUTHOR)
        assert disabled.note.startswith("disabled after failing at run time: KeyError")
        assert [c.rule.id for c in feed.rules.active] == ["big"]
        stage.decide({}, frame, np.array([0.1, 0.2, 0.9]), np.array([0, 0, 1]))
        assert stage.status()["failed"] == [] and feed.rules.get("breaks").version == 2  # disabled once
    finally:
        feed.stop()


def test_status_shows_the_rules_the_detector_applies(scoped, pipeline):
    ports = {
        "FRAUDSTREAM_DETECTOR_METRICS_PORT": str(pipeline["detector"].port),
        "FRAUDSTREAM_SINK_METRICS_PORT": str(pipeline["sink"].port),
    }
    env = {**os.environ, **scoped.environment(), **ports, "COLUMNS": "250"}
    offset = applied_offset(pipeline["detector"])

    result = subprocess.run(
        [sys.executable, "-m", "fraudstream", "status"], env=env, capture_output=True, text=True
    )

    active = pipeline["detector"].health()["rules"]["active"]
    assert f"{active} rules enabled (topic offset {offset})" in result.stdout, result.stdout
