"""Passwords read from ``FRAUDSTREAM_<NAME>_FILE`` files, as docker secrets are, and kept out of reprs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from fraudstream.config import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("FRAUDSTREAM_")]:
        monkeypatch.delenv(name)


def test_a_password_is_read_from_the_file_its_variable_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "pg_password"
    secret.write_text("s3cret/with:odd@chars\n")
    monkeypatch.setenv("FRAUDSTREAM_PG_PASSWORD_FILE", str(secret))
    settings = Settings()
    assert settings.pg_password.get_secret_value() == "s3cret/with:odd@chars"
    assert "s3cret%2Fwith%3Aodd%40chars@localhost" in settings.pg_dsn


def test_new_secret_fields_are_secret_strings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "writer"
    secret.write_text("writer-password")
    monkeypatch.setenv("FRAUDSTREAM_PG_WRITER_PASSWORD_FILE", str(secret))
    settings = Settings()
    assert settings.pg_writer_password.get_secret_value() == "writer-password"
    assert "writer-password" not in repr(settings)
    assert settings.environment()["FRAUDSTREAM_PG_WRITER_PASSWORD"] == "writer-password"


def test_a_file_and_a_plain_value_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "pg_password"
    secret.write_text("from-file")
    monkeypatch.setenv("FRAUDSTREAM_PG_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("FRAUDSTREAM_PG_PASSWORD", "from-env")
    with pytest.raises(ValueError, match="FRAUDSTREAM_PG_PASSWORD and FRAUDSTREAM_PG_PASSWORD_FILE"):
        Settings()


def test_a_missing_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUDSTREAM_KAFKA_SASL_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="FRAUDSTREAM_KAFKA_SASL_PASSWORD_FILE: cannot read"):
        Settings()


def test_only_passwords_are_read_from_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value = tmp_path / "user"
    value.write_text("someone")
    monkeypatch.setenv("FRAUDSTREAM_PG_USER_FILE", str(value))
    assert Settings().pg_user == "fraud"


def test_tls_options_reach_the_postgres_dsn() -> None:
    settings = Settings(pg_sslmode="verify-full", pg_sslrootcert=Path("/ca dir/ca.pem"))
    assert settings.pg_dsn.endswith("/fraud?sslmode=verify-full&sslrootcert=%2Fca+dir%2Fca.pem")
    with pytest.raises(ValidationError):
        Settings(pg_sslmode="sometimes")
