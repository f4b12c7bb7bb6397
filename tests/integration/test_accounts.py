"""Accounts on the real PostgreSQL: `fraudstream users add`, the audit trail, the UI's role."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import asyncpg
import pytest

from fraudstream.config import Settings
from fraudstream.ui import accounts
from fraudstream.ui.accounts import AccountError

pytestmark = pytest.mark.integration

PASSWORD = "a long enough password"


def users_add(settings: Settings, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudstream", "users", "add", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **settings.environment()},
        timeout=60,
    )


def audit_of(settings: Settings, subject: str) -> list[tuple[str, str]]:
    async def rows(connection: asyncpg.Connection) -> list[tuple[str, str]]:
        found = await connection.fetch(
            "SELECT actor, action FROM audit WHERE subject = $1 ORDER BY id", subject
        )
        return [(row["actor"], row["action"]) for row in found]

    return accounts.run(settings.pg_dsn, rows)


def test_users_add_reads_the_password_from_stdin(stack_settings):
    name = f"cli-{uuid.uuid4().hex[:8]}"

    result = users_add(stack_settings, name, "--role", "analyst", stdin=PASSWORD + "\n")

    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert accounts.run(stack_settings.pg_dsn, accounts.login, name, PASSWORD) == accounts.User(
        name, "analyst"
    )
    [(actor, action)] = audit_of(stack_settings, name)
    assert actor.startswith("cli:") and action == "user added"


def test_users_add_refuses_a_short_password_or_an_unknown_role_and_adds_nothing(stack_settings):
    name = f"cli-{uuid.uuid4().hex[:8]}"

    short = users_add(stack_settings, name, "--role", "viewer", stdin="short\n")
    unknown = users_add(stack_settings, name, "--role", "root", stdin=PASSWORD + "\n")

    assert short.returncode == 1 and "at least 12 characters; no account was added" in short.stderr
    assert unknown.returncode == 1 and "unknown role 'root'" in unknown.stderr
    assert audit_of(stack_settings, name) == []


def test_changes_are_audited_with_their_author_and_a_disabled_user_cannot_log_in(stack_settings):
    dsn, name = stack_settings.pg_dsn, f"user-{uuid.uuid4().hex[:8]}"
    accounts.run(dsn, accounts.add_user, name, PASSWORD, "viewer", "alice")
    accounts.run(dsn, accounts.set_role, name, "analyst", "bob")
    accounts.run(dsn, accounts.set_disabled, name, True, "carol")

    with pytest.raises(AccountError, match="wrong user name or password"):
        accounts.run(dsn, accounts.login, name, PASSWORD)
    assert audit_of(stack_settings, name) == [
        ("alice", "user added"),
        ("bob", "role changed"),
        ("carol", "user disabled"),
    ]
    with pytest.raises(AccountError, match="already exists"):
        accounts.run(dsn, accounts.add_user, name, PASSWORD, "viewer", "alice")


def test_passwords_are_stored_as_argon2_hashes(stack_settings):
    name = f"user-{uuid.uuid4().hex[:8]}"
    accounts.run(stack_settings.pg_dsn, accounts.add_user, name, PASSWORD, "viewer", "test")

    async def stored(connection: asyncpg.Connection) -> str:
        return await connection.fetchval("SELECT password_hash FROM users WHERE name = $1", name)

    digest = accounts.run(stack_settings.pg_dsn, stored)
    assert digest.startswith("$argon2id$") and PASSWORD not in digest


def test_the_ui_role_writes_accounts_but_cannot_rewrite_the_audit_or_the_scores(stack_settings):
    ui = stack_settings.pg_reader_dsn
    name = f"ui-{uuid.uuid4().hex[:8]}"
    accounts.run(ui, accounts.add_user, name, PASSWORD, "viewer", "admin-in-ui")

    async def execute(connection: asyncpg.Connection, statement: str) -> None:
        await connection.execute(statement)

    for statement in (
        "UPDATE audit SET actor = 'someone else'",
        "DELETE FROM audit",
        "DELETE FROM login_attempts",
        "DELETE FROM users",
        "INSERT INTO fraud_scores (transaction_id, score, fraud_flag) VALUES (gen_random_uuid(), 0, 0)",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            accounts.run(ui, execute, statement)
