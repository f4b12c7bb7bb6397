"""The interface's accounts in PostgreSQL: argon2 password hashes, roles, rate-limited logins, an audit trail.

Every change (a user added, a role changed, an account disabled) is written in the same transaction as
its ``audit`` row, with its author. Login attempts are recorded in ``login_attempts``; after
MAX_FAILURES failures within FAILURE_WINDOW a name is refused without its password being checked.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal, TypeVar, get_args

import asyncpg
import orjson
import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

Role = Literal["viewer", "analyst", "admin"]
ROLES: tuple[str, ...] = get_args(Role)
NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_LENGTH = 12
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(minutes=15)
CONNECT_TIMEOUT_S = 5.0

HASHER = PasswordHasher()
# Checked against when the name is unknown, so an unknown name takes as long as a wrong password.
DUMMY_HASH = HASHER.hash("not a password of anyone")

T = TypeVar("T")


class AccountError(ValueError):
    """A refused account change or login; the message is fit to show to the person."""


class TooManyFailures(AccountError):
    """Too many failed logins for this name recently."""


@dataclass(frozen=True)
class User:
    name: str
    role: Role


def validate_name(name: str) -> str:
    if not NAME.match(name):
        raise AccountError("a user name is 1 to 64 letters, digits or . _ @ -")
    return name


def validate_role(role: str) -> Role:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password has at least {MIN_PASSWORD_LENGTH} characters")
    return HASHER.hash(password)


def _verified(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


async def add_user(connection: asyncpg.Connection, name: str, password: str, role: str, actor: str) -> None:
    validate_name(name)
    validate_role(role)
    digest = hash_password(password)
    async with connection.transaction():
        try:
            await connection.execute(
                "INSERT INTO users (name, password_hash, role, created_by) VALUES ($1, $2, $3, $4)",
                name, digest, role, actor,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise AccountError(f"user {name} already exists") from None
        await _audit(connection, actor, "user added", name, {"role": role})


async def set_role(connection: asyncpg.Connection, name: str, role: str, actor: str) -> None:
    validate_role(role)
    async with connection.transaction():
        before = await connection.fetchval("SELECT role FROM users WHERE name = $1 FOR UPDATE", name)
        if before is None:
            raise AccountError(f"no user {name}")
        await connection.execute("UPDATE users SET role = $2 WHERE name = $1", name, role)
        await _audit(connection, actor, "role changed", name, {"from": before, "to": role})


async def set_disabled(connection: asyncpg.Connection, name: str, disabled: bool, actor: str) -> None:
    async with connection.transaction():
        if await connection.fetchval(
            "UPDATE users SET disabled = $2 WHERE name = $1 RETURNING 1", name, disabled
        ):
            await _audit(connection, actor, "user disabled" if disabled else "user enabled", name, None)
        else:
            raise AccountError(f"no user {name}")


async def login(connection: asyncpg.Connection, name: str, password: str) -> User:
    """The user ``name`` when ``password`` is theirs; AccountError (the same message whether the name
    exists or not) otherwise, TooManyFailures after MAX_FAILURES recent failures."""
    failures = await connection.fetchval(
        "SELECT count(*) FROM login_attempts WHERE user_name = $1 AND NOT succeeded"
        " AND attempted_at > now() - $2::interval AND attempted_at > coalesce("
        "  (SELECT max(attempted_at) FROM login_attempts WHERE user_name = $1 AND succeeded), '-infinity')",
        name, FAILURE_WINDOW,
    )  # fmt: skip
    if failures >= MAX_FAILURES:
        minutes = int(FAILURE_WINDOW.total_seconds() // 60)
        raise TooManyFailures(f"too many failed logins for {name}: try again in up to {minutes} minutes")
    row = await connection.fetchrow("SELECT password_hash, role, disabled FROM users WHERE name = $1", name)
    matches = _verified(row["password_hash"] if row else DUMMY_HASH, password)
    succeeded = bool(row) and matches and not row["disabled"]
    await connection.execute(
        "INSERT INTO login_attempts (user_name, succeeded) VALUES ($1, $2)", name[:64], succeeded
    )
    if not succeeded:
        raise AccountError("wrong user name or password")
    return User(name, row["role"])


async def first_admin(connection: asyncpg.Connection, actor: str) -> str | None:
    """When no account exists, create ``admin`` with a generated password and return that password."""
    if await connection.fetchval("SELECT count(*) FROM users"):
        return None
    password = secrets.token_urlsafe(18)
    await add_user(connection, "admin", password, "admin", actor)
    return password


async def count_users(connection: asyncpg.Connection) -> int:
    return await connection.fetchval("SELECT count(*) FROM users WHERE NOT disabled")


async def list_users(connection: asyncpg.Connection) -> pd.DataFrame:
    rows = await connection.fetch(
        "SELECT name, role, disabled, created_at, created_by FROM users ORDER BY name"
    )
    return pd.DataFrame(
        [dict(row) for row in rows], columns=["name", "role", "disabled", "created_at", "created_by"]
    )


async def recent_audit(connection: asyncpg.Connection, limit: int = 50) -> pd.DataFrame:
    rows = await connection.fetch(
        "SELECT at, actor, action, subject, detail::text AS detail FROM audit ORDER BY at DESC LIMIT $1",
        limit,
    )
    return pd.DataFrame([dict(row) for row in rows], columns=["at", "actor", "action", "subject", "detail"])


async def _audit(
    connection: asyncpg.Connection, actor: str, action: str, subject: str | None, detail: dict | None
) -> None:
    await connection.execute(
        "INSERT INTO audit (actor, action, subject, detail) VALUES ($1, $2, $3, $4::jsonb)",
        actor, action, subject, None if detail is None else orjson.dumps(detail).decode(),
    )  # fmt: skip


def run(dsn: str, action: Callable[..., Awaitable[T]], *args: object) -> T:
    """``action(connection, *args)`` over a connection of its own (for the CLI and Streamlit's threads)."""

    async def main() -> T:
        connection = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
        try:
            return await action(connection, *args)
        finally:
            await connection.close()

    return asyncio.run(main())
