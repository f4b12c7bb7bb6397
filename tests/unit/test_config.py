"""Settings' secrets: hidden wherever settings are shown, revealed only to connections and child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fraudstream.config import Settings
from fraudstream.infra.process import free_port

SECRETS = {
    "kafka_sasl_password": "kafka-s3cret",
    "pg_password": "pg-s3cret",
    "pg_reader_password": "ro-s3cret",
}


def test_secrets_never_show_in_the_settings_repr_or_dump():
    settings = Settings(**SECRETS)

    shown = [repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())]
    assert not any(secret in text for secret in SECRETS.values() for text in shown)


def test_a_child_process_environment_reproduces_the_secrets(monkeypatch: pytest.MonkeyPatch):
    settings = Settings(**SECRETS)
    for name, value in settings.environment().items():
        monkeypatch.setenv(name, value)

    child = Settings()

    assert child == settings
    assert child.kafka_sasl_password.get_secret_value() == "kafka-s3cret"


def test_the_dsn_carries_the_password_and_the_address_does_not():
    settings = Settings(**SECRETS, pg_host="db", pg_port=5433)

    assert settings.pg_dsn == "postgresql://fraud:pg-s3cret@db:5433/fraud"
    assert settings.pg_reader_dsn == "postgresql://fraud_reader:ro-s3cret@db:5433/fraud"
    assert settings.pg_address == "fraud@db:5433/fraud"


def test_status_shows_no_password(tmp_path):
    nothing = Settings(
        **SECRETS,
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",
        pg_port=free_port(),
        detector_metrics_port=free_port(),
        sink_metrics_port=free_port(),
    )
    table, report = (_status(nothing, tmp_path, *arguments) for arguments in ([], ["--json"]))

    for result in (table, report):
        assert result.returncode == 1, result.stderr
        assert not any(secret in result.stdout + result.stderr for secret in SECRETS.values())
    assert json.loads(report.stdout)["postgres"]["database"] == f"fraud@localhost:{nothing.pg_port}/fraud"


def _status(settings: Settings, cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudstream", "status", *arguments],
        env={**os.environ, **settings.environment(), "COLUMNS": "200"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
