"""Fixtures of the UI tests: the app's pages under Streamlit's AppTest, pointed at a stack or at nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fraudstream.config import Settings
from fraudstream.infra.migrations import migrate
from fraudstream.infra.process import free_port

UI_DIR = Path(__file__).resolve().parents[2] / "src" / "fraudstream" / "ui"
RUN_TIMEOUT_S = 30

Page = Callable[[str], AppTest]


def _use(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    for name, value in settings.environment().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def page() -> Page:
    """A page script of the UI (e.g. "results_page.py"), loaded but not yet run."""
    return lambda name: AppTest.from_file(str(UI_DIR / name), default_timeout=RUN_TIMEOUT_S)


@pytest.fixture
def stack_env(monkeypatch: pytest.MonkeyPatch, stack_settings: Settings) -> Settings:
    """The app's settings point at the session's real Kafka and PostgreSQL."""
    _use(monkeypatch, stack_settings)
    return stack_settings


@pytest.fixture
def own_database_env(monkeypatch: pytest.MonkeyPatch, database: Settings) -> Settings:
    """The app's settings point at the session's stack but at a migrated database of its own."""
    asyncio.run(migrate(database.pg_dsn, reader=database.pg_reader))
    _use(monkeypatch, database)
    return database


@pytest.fixture
def nothing_env(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app's settings point at closed ports: no Kafka, no PostgreSQL."""
    settings = Settings(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", pg_port=free_port())
    _use(monkeypatch, settings)
    return settings
