"""The schema: versioned migrations, and the UI's role that can only read."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from fraudstream.infra.migrations import migrate, migration_files

pytestmark = pytest.mark.integration


async def _fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetch(query)
    finally:
        await connection.close()


def test_every_migration_is_recorded_once_and_rerunning_applies_nothing(stack_settings):
    recorded = asyncio.run(_fetch(stack_settings.pg_dsn, "SELECT version FROM schema_migrations ORDER BY 1"))

    assert [row["version"] for row in recorded] == [path.stem for path in migration_files()]
    assert asyncio.run(migrate(stack_settings.pg_dsn, reader=stack_settings.pg_reader)) == []


def test_the_reader_role_reads_but_cannot_write(stack_settings):
    reader = stack_settings.pg_reader_dsn

    asyncio.run(_fetch(reader, "SELECT count(*) FROM fraud_scores"))
    for statement in (
        "INSERT INTO fraud_scores (transaction_id, score, fraud_flag) VALUES (gen_random_uuid(), 0.1, 0)",
        "DELETE FROM fraud_scores",
        "DROP TABLE fraud_scores",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            asyncio.run(_fetch(reader, statement))
