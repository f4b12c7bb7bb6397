"""Versioned schema migrations: plain SQL files applied in order, each recorded in ``schema_migrations``."""

from __future__ import annotations

import logging
from pathlib import Path

import asyncpg
from pydantic import SecretStr

from fraudstream.infra.secrets import pg_scram_verifier

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
LOCK_ID = 7_461_302  # advisory lock: two services starting together apply each migration once
# The sink process's role: it inserts scores, and the labels of its labels consumer (whose id comes from
# a sequence), and its live-quality gauges read the current labels.
WRITER_TABLES = ("fraud_scores", "fraud_labels")
WRITER_SEQUENCES = ("fraud_labels_id_seq",)
WRITER_READS = ("current_labels",)
# The partitions of fraud_scores, which the sink creates ahead and drops after the retention period
# (functions run as their owner: the sink's role gets no DDL rights).
WRITER_FUNCTIONS = ("fraud_scores_add_partitions(timestamptz[])", "fraud_scores_maintain(integer)")
# What the interface writes besides reading everything: its accounts, login attempts, audit trail
# (appended to, never changed).
READER_WRITES = {"users": "INSERT, UPDATE", "login_attempts": "INSERT", "audit": "INSERT"}


def migration_files() -> list[Path]:
    return sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))


async def migrate(
    dsn: str,
    reader: tuple[str, SecretStr] | None = None,
    writer: tuple[str, SecretStr] | None = None,
    retention_days: int | None = None,
) -> list[str]:
    """Apply the migrations not yet recorded; return the versions applied now.

    ``reader`` (user, password) is a role given read access to every table, for the UI; ``writer``
    one that may only read and insert into the sink's tables. ``retention_days`` (when given) becomes
    the days of scores kept: the policy the sink's partition upkeep applies (the sink's role cannot
    change it).
    """
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("SELECT pg_advisory_lock($1)", LOCK_ID)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await connection.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for path in migration_files():
            version = path.stem
            if version in done:
                continue
            async with connection.transaction():
                await connection.execute(path.read_text())
                await connection.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            logger.info("applied migration %s", version)
            applied.append(version)
        if retention_days is not None:
            await connection.execute("UPDATE fraud_scores_policy SET retention_days = $1", retention_days)
        if reader is not None:
            user, password = reader
            await ensure_reader(connection, user, password.get_secret_value())
        if writer is not None:
            user, password = writer
            await ensure_writer(connection, user, password.get_secret_value())
        return applied
    finally:
        await connection.close()


async def ensure_reader(connection: asyncpg.Connection, user: str, password: str) -> None:
    """Create (or update the password of) the interface's login role: SELECT on every table, now and in
    future tables, and writes only to the interface's own account tables (READER_WRITES)."""
    await _ensure_login(connection, user, password)
    await _run(
        connection,
        ("GRANT SELECT ON ALL TABLES IN SCHEMA public TO %I", user),
        ("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO %I", user),
        *(
            (f"GRANT {privileges} ON TABLE %I TO %I", table, user)
            for table, privileges in READER_WRITES.items()
        ),
    )


async def ensure_writer(
    connection: asyncpg.Connection, user: str, password: str, tables: tuple[str, ...] = WRITER_TABLES
) -> None:
    """Create (or update the password of) a login role that may only SELECT and INSERT into ``tables``
    (and read ``WRITER_READS``): no UPDATE, DELETE, TRUNCATE or DDL, and nothing on any other table."""
    await _ensure_login(connection, user, password)
    await _run(
        connection,
        ("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I", user),
        *(("GRANT SELECT, INSERT ON TABLE %I TO %I", table, user) for table in tables),
        *(("GRANT USAGE ON SEQUENCE %I TO %I", sequence, user) for sequence in WRITER_SEQUENCES),
        *(("GRANT SELECT ON TABLE %I TO %I", view, user) for view in WRITER_READS),
        *((f"GRANT EXECUTE ON FUNCTION {function} TO %I", user) for function in WRITER_FUNCTIONS),
    )


async def _ensure_login(connection: asyncpg.Connection, user: str, password: str) -> None:
    """A login role without special powers that may connect and see the schema.

    The password is sent as its SCRAM verifier: the plain password is in no statement, so in no log.
    """
    exists = await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", user)
    role = "ALTER ROLE %I" if exists else "CREATE ROLE %I"
    await _run(
        connection,
        (f"{role} LOGIN PASSWORD %L NOSUPERUSER NOCREATEDB NOCREATEROLE", user, pg_scram_verifier(password)),
        ("GRANT CONNECT ON DATABASE %I TO %I", None, user),
        ("GRANT USAGE ON SCHEMA public TO %I", user),
    )


async def _run(connection: asyncpg.Connection, *statements: tuple[str | None, ...]) -> None:
    """Each (template, arguments...) as formatted by the server: role names and passwords cannot be
    bind parameters in DDL; ``format`` with %I/%L quotes them."""
    for template, *arguments in statements:
        await connection.execute(await _formatted(connection, template, arguments))


async def _formatted(connection: asyncpg.Connection, template: str, arguments: list[str | None]) -> str:
    """``format(template, ...)`` evaluated by the server; None stands for the current database."""
    values = [value for value in arguments if value is not None]
    numbers = iter(range(1, len(values) + 1))
    placeholders = ", ".join(
        "current_database()" if value is None else f"${next(numbers)}::text" for value in arguments
    )
    return await connection.fetchval(f"SELECT format('{template}', {placeholders})", *values)
