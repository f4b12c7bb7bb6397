"""The model's life while transactions stream, on the real stack: a real MLflow server (session), Kafka,
PostgreSQL, and the detector and sink as processes following the registry's aliases.

The tests of this module run in order on one pipeline of their own (own topics, own registered model):
a promotion during streaming, the shadow challenger and the promotion it refuses, drift on shifted data,
and the registry going down.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import orjson
import pandas as pd
import pytest
from confluent_kafka import Consumer, TopicPartition
from playwright.sync_api import expect, sync_playwright
from streamlit.testing.v1 import AppTest

from fraudstream.config import Settings
from fraudstream.contracts import schema
from fraudstream.infra.mlflow import MlflowServer
from fraudstream.infra.process import free_port
from fraudstream.infra.topics import ensure_topics
from fraudstream.ml.registry import Registry
from fraudstream.ops.status import collect
from fraudstream.ops.supervisor import ServiceProcess
from fraudstream.pipeline import kafka
from fraudstream.pipeline.kafka import service_health
from fraudstream.pipeline.producer import TransactionProducer
from tests.helpers import running_pipeline, wait_for
from tests.lifecycle.labels import insert_labels
from tests.ui.conftest import UI_DIR
from tests.ui.test_browser import CHROMIUM, CHROMIUM_ARGS, _healthy
from tests.unit.transactions import synthetic

pytestmark = pytest.mark.integration
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshot-models.png"


@dataclass
class Lifecycle:
    settings: Settings
    registry: Registry
    services: dict[str, ServiceProcess]
    good: int
    weak: int


@pytest.fixture(scope="module")
def lifecycle(registry_settings: Settings, trained_models: dict[str, Path]) -> Iterator[Lifecycle]:
    tag = uuid.uuid4().hex[:8]
    settings = registry_settings.scoped(f"life-{tag}").model_copy(
        update={"registered_model": f"fraudstream-life-{tag}"}
    )
    ensure_topics(settings)
    registry = Registry(settings.mlflow_tracking_uri, settings.registered_model)
    good = registry.register(trained_models["good"]).number
    weak = registry.register(trained_models["weak"]).number
    registry.set_champion(good)
    with running_pipeline(settings, instance=f"life-{tag}") as services:
        yield Lifecycle(settings, registry, services, good, weak)


def stream(settings: Settings, frame: pd.DataFrame, rate: float | None = None) -> list[str]:
    """Send ``frame`` under fresh customers; the transaction ids by row."""
    fresh = frame.drop(columns=[schema.TARGET_COLUMN], errors="ignore").copy()
    fresh["name_2"] = fresh["name_2"] + f"-{uuid.uuid4().hex[:6]}"
    return TransactionProducer(settings).send(fresh, rate=rate).transaction_ids


def stored(settings: Settings, ids: list[str]) -> pd.DataFrame:
    async def query() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            return await connection.fetch(
                "SELECT transaction_id::text, score, fraud_flag, model_version, shadow_score, shadow_version"
                " FROM fraud_scores WHERE transaction_id = ANY($1::uuid[])",
                ids,
            )
        finally:
            await connection.close()

    columns = ["transaction_id", "score", "fraud_flag", "model_version", "shadow_score", "shadow_version"]
    rows = [dict(row) for row in asyncio.run(query())]
    return pd.DataFrame(rows, columns=columns).set_index("transaction_id")


def wait_stored(life: Lifecycle, ids: list[str], timeout: float = 120) -> pd.DataFrame:
    wait_for(
        lambda: len(stored(life.settings, ids)) == len(ids),
        timeout,
        f"{len(ids)} rows",
        *life.services.values(),
    )
    return stored(life.settings, ids)


def scoring_messages(settings: Settings, ids: set[str]) -> dict[int, list[dict]]:
    """The committed score messages of these transactions, per partition of ``scoring`` in offset order."""
    consumer = Consumer(
        {
            **kafka.client_config(settings),
            "group.id": f"reader-{uuid.uuid4()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    metadata = consumer.list_topics(settings.topic_scoring, timeout=10).topics[settings.topic_scoring]
    consumer.assign([TopicPartition(settings.topic_scoring, p, 0) for p in metadata.partitions])
    found: dict[int, list[dict]] = defaultdict(list)
    deadline, total = time.monotonic() + 60, 0
    try:
        while total < len(ids) and time.monotonic() < deadline:
            for message in consumer.consume(1000, 1.0):
                if message.error() is None:
                    decoded = orjson.loads(message.value())
                    if decoded["transaction_id"] in ids:
                        found[message.partition()].append({**decoded, "timestamp": message.timestamp()[1]})
                        total += 1
    finally:
        consumer.close()
    return found


def test_a_promotion_during_streaming_switches_versions_at_a_batch_boundary(lifecycle: Lifecycle):
    frame = synthetic(customers=60, days=60, seed=2)
    old, new = f"{lifecycle.registry.name}/{lifecycle.good}", f"{lifecycle.registry.name}/{lifecycle.weak}"
    promoted_at: list[float] = []

    def promote_midway() -> None:
        time.sleep(3)
        promoted_at.append(time.time())
        lifecycle.registry.set_champion(lifecycle.weak)

    promoter = threading.Thread(target=promote_midway)
    promoter.start()
    ids = stream(lifecycle.settings, frame, rate=1500)
    promoter.join()
    serving = lambda: _health(lifecycle).get("champion") == new  # noqa: E731
    wait_for(serving, max(0.1, promoted_at[0] + 10 - time.time()), "the new champion within 10 s")
    ids += stream(lifecycle.settings, synthetic(customers=10, days=5, seed=6))  # some after the swap for sure

    rows = wait_stored(lifecycle, ids)
    messages = scoring_messages(lifecycle.settings, set(ids))
    flat = [message for partition in messages.values() for message in partition]
    assert len(flat) == len(ids) == len({m["transaction_id"] for m in flat})  # each scored exactly once
    assert set(rows["model_version"]) == {old, new}
    for partition in messages.values():  # every row before the switch is the old version, every row after new
        versions = [message["model_version"] for message in partition]
        switch = versions.index(new) if new in versions else len(versions)
        assert set(versions[:switch]) <= {old} and set(versions[switch:]) <= {new}
    lifecycle.registry.set_champion(lifecycle.good)


def test_the_shadow_challenger_is_stored_never_decides_and_a_worse_one_is_not_promoted(lifecycle: Lifecycle):
    lifecycle.registry.set_challenger(lifecycle.weak)
    champion, challenger = (f"{lifecycle.registry.name}/{n}" for n in (lifecycle.good, lifecycle.weak))
    wait_for(lambda: _health(lifecycle).get("challenger") == challenger, 30, "the challenger loaded")
    frame = synthetic(customers=60, days=60, seed=3)
    ids = stream(lifecycle.settings, frame)

    rows = wait_stored(lifecycle, ids).loc[ids]
    assert set(rows["model_version"]) == {champion} and set(rows["shadow_version"]) == {challenger}
    assert rows["shadow_score"].notna().all()
    assert (rows["fraud_flag"] == (rows["score"] > lifecycle.settings.threshold)).all()
    assert (rows["score"] != rows["shadow_score"]).any()
    insert_labels(lifecycle.settings, ids, frame[schema.TARGET_COLUMN].tolist())

    refused = _cli(lifecycle.settings, "models", "promote", str(lifecycle.weak))
    assert refused.returncode == 1 and "not promoted: PR-AUC" in refused.stderr
    assert lifecycle.registry.alias("champion").number == lifecycle.good
    forced = _cli(lifecycle.settings, "models", "promote", str(lifecycle.weak), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "forced although PR-AUC" in forced.stderr
    assert lifecycle.registry.alias("champion").number == lifecycle.weak
    assert lifecycle.registry.alias("challenger") is None  # the promoted challenger is no longer shadowed
    rolled = _cli(lifecycle.settings, "models", "rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert lifecycle.registry.alias("champion").number == lifecycle.good


def test_data_shifted_on_purpose_raises_the_drift_warning(lifecycle: Lifecycle):
    wait_for(lambda: _health(lifecycle).get("champion", "").endswith(f"/{lifecycle.good}"), 30, "champion")
    shifted = synthetic(customers=60, days=30, seed=4)
    shifted["amount"] = shifted["amount"] * 5
    shifted["transaction_time"] = shifted["transaction_time"].str[:11] + "02:30"  # all night-time
    ids = stream(lifecycle.settings, shifted)
    wait_stored(lifecycle, ids)

    wait_for(lambda: (_health(lifecycle)["drift"] or {}).get("warning"), 30, "a drift warning")
    drift = _health(lifecycle)["drift"]
    assert drift["psi"]["1h"]["amount"] > 0.2
    report = collect(
        lifecycle.settings.model_copy(update={"detector_metrics_port": lifecycle.services["detector"].port})
    )
    assert any(warning.startswith("drift: PSI") for warning in report["warnings"])
    metrics = _get(lifecycle.services["detector"].port, "/metrics")
    assert 'fraudstream_psi{feature="amount",window="1h"}' in metrics


def test_with_the_registry_down_the_detector_keeps_scoring_and_says_so(
    lifecycle: Lifecycle, mlflow_server: MlflowServer
):
    mlflow_server.stop()
    try:
        wait_for(
            lambda: str(_health(lifecycle).get("model_registry")).startswith("unreachable since"),
            30,
            "the registry reported unreachable",
        )
        ids = stream(lifecycle.settings, synthetic(customers=10, days=5, seed=5))
        rows = wait_stored(lifecycle, ids)
        assert set(rows["model_version"]) == {f"{lifecycle.registry.name}/{lifecycle.good}"}
        report = collect(
            lifecycle.settings.model_copy(
                update={"detector_metrics_port": lifecycle.services["detector"].port}
            )
        )
        assert not report["mlflow"]["healthy"] and not report["healthy"]
        assert any(warning.startswith("model registry: unreachable since") for warning in report["warnings"])
        # A detector starting now has no model it can verify: it waits, and scores nothing.
        starting = ServiceProcess(
            "detector", lifecycle.settings, "--instance", f"cold-{uuid.uuid4().hex[:6]}"
        )
        starting.start()
        try:
            wait_for(lambda: service_health(starting.port, 2)["running"], 60, "the cold detector", starting)
            time.sleep(3)
            health = service_health(starting.port, 2)  # 503: not ready
            assert health["ready"] is False and health["champion"] is None
            assert health["detail"] == "waiting for a verified champion model"
            assert health["model_registry"].startswith("unreachable since")
        finally:
            starting.stop()
    finally:
        mlflow_server.start()
    wait_for(lambda: _health(lifecycle).get("model_registry") == "ok", 30, "the registry back")


def _health(life: Lifecycle) -> dict:
    return life.services["detector"].health() or {}


def _get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
        return reply.read().decode()


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudstream", *args],
        env={**os.environ, **settings.environment()},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def page_env(lifecycle: Lifecycle, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app's settings: this module's stack, registry and detector."""
    settings = lifecycle.settings.model_copy(
        update={"detector_metrics_port": lifecycle.services["detector"].port}
    )
    for name, value in settings.environment().items():
        monkeypatch.setenv(name, value)
    return settings


def test_the_models_page_compares_the_challenger_refuses_a_worse_one_and_shows_drift(
    lifecycle: Lifecycle, page_env: Settings
):
    lifecycle.registry.set_challenger(lifecycle.weak)
    app = AppTest.from_file(str(UI_DIR / "models_page.py"), default_timeout=60).run()

    assert not app.exception and not app.error
    versions = app.dataframe[0].value
    assert set(versions["version"]) == {lifecycle.good, lifecycle.weak}
    assert app.metric[0].value.endswith(f"/{lifecycle.good}") and app.metric[1].value.endswith(
        f"/{lifecycle.weak}"
    )
    table = app.dataframe[1].value.set_index("metric")
    champion_auc, challenger_auc = table.loc["PR-AUC"].tolist()
    assert champion_auc > challenger_auc
    assert "labelled transactions scored by both" in app.caption[1].value
    assert app.warning and app.warning[0].value.startswith("PSI")

    app.selectbox(key="action_version").set_value(lifecycle.weak)
    app.button[0].click().run()
    assert app.error and "not promoted: PR-AUC" in app.error[0].value
    assert lifecycle.registry.alias("champion").number == lifecycle.good


@pytest.mark.browser
def test_the_models_page_in_chromium(lifecycle: Lifecycle, page_env: Settings, tmp_path: Path):
    """The README's screenshot of the Models page (docs/screenshot-models.png, with UPDATE_SCREENSHOT=1)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (make system-deps installs it)")
    lifecycle.registry.set_challenger(lifecycle.weak)
    port = free_port()
    env = {**os.environ, **page_env.environment(), "FRAUDSTREAM_UI_PORT": str(port)}
    with (tmp_path / "ui.out").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "fraudstream", "ui"], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(url), 30, "the UI")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(
                viewport={"width": 1400, "height": 2700}
            )  # the whole page, drift included
            page.set_default_timeout(30_000)
            page.goto(url)
            page.get_by_role("link", name="Models").click()
            # The first run of the page imports the model code and asks the registry: slow on 2 cores.
            expect(page.get_by_text("Where they disagree most")).to_be_visible(timeout=90_000)
            expect(page.get_by_test_id("stVegaLiteChart")).to_be_visible(timeout=30_000)
            page.wait_for_timeout(1000)  # let the chart finish drawing
            page.screenshot(path=_screenshot_path(tmp_path), full_page=True)
            browser.close()
    finally:
        process.terminate()
        process.wait(15)


def _screenshot_path(tmp_path: Path) -> Path:
    return SCREENSHOT if os.environ.get("UPDATE_SCREENSHOT") == "1" else tmp_path / SCREENSHOT.name
