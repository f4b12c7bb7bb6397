"""Short-lived PostgreSQL reads for a command or a page: one connection for a few queries, closed after,
and any failure to reach or query the database as one ``DatabaseUnavailable`` saying where and why.

Used by the backtest's reads, ``labels export`` and the UI's views (the stream services keep pools).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

import asyncpg
import orjson

CONNECT_TIMEOUT_S = 5.0
T = TypeVar("T")


class DatabaseUnavailable(RuntimeError):
    """PostgreSQL could not be reached or queried; the message says where and why."""


async def connect(dsn: str, timeout: float = CONNECT_TIMEOUT_S) -> asyncpg.Connection:
    """A connection with ``jsonb`` decoded to Python values."""
    connection = await asyncpg.connect(dsn, timeout=timeout)
    await connection.set_type_codec("jsonb", encoder=str, decoder=orjson.loads, schema="pg_catalog")
    return connection


def run(
    dsn: str, queries: Callable[[asyncpg.Connection], Awaitable[T]], timeout: float = CONNECT_TIMEOUT_S
) -> T:
    """``queries`` over one connection of their own (``connect``). Raises ``DatabaseUnavailable`` when
    PostgreSQL is down, refuses the login, or lacks a table."""

    async def over_one_connection() -> T:
        connection = await connect(dsn, timeout)
        try:
            return await queries(connection)
        finally:
            await connection.close()

    try:
        return asyncio.run(over_one_connection())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:  # TimeoutError is an OSError
        where = urlsplit(dsn)
        reason = str(error) or repr(error)
        raise DatabaseUnavailable(
            f"PostgreSQL at {where.hostname}:{where.port}{where.path} is unavailable: {reason}"
        ) from error
