"""Test helpers that drive the real system: service processes, and reading what landed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

import asyncpg
import orjson
import pandas as pd
from confluent_kafka import Consumer

from fraudstream.config import Settings
from fraudstream.ops.loadgen import transactions
from fraudstream.ops.supervisor import ServiceProcess


@contextmanager
def running_pipeline(settings: Settings, instance: str = "test") -> Iterator[dict[str, ServiceProcess]]:
    """A detector and a sink as real processes, ready, stopped on exit."""
    services = {
        "detector": ServiceProcess("detector", settings, "--instance", instance),
        "sink": ServiceProcess("sink", settings),
    }
    for service in services.values():
        service.start()
    try:
        for service in services.values():
            service.wait_ready()
        yield services
    finally:
        for service in services.values():
            service.stop()


def wait_for(check: Callable[[], bool], timeout: float, what: str, *services: ServiceProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    logs = "\n".join(f"--- {s.name} ---\n{s.log_tail()}" for s in services)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what}\n{logs}\n{_kafka_log(services)}"
    )


def with_fresh_customers(frame: pd.DataFrame, tag: str) -> pd.DataFrame:
    """The same rows under customers never seen before, so the stream's history for them starts empty."""
    fresh = frame.copy()
    fresh["name_2"] = fresh["name_2"] + f"-{tag}"
    return fresh


def fetch_scores(settings: Settings, transaction_ids: Iterable[str]) -> pd.DataFrame:
    """fraud_scores rows of these transactions, indexed by transaction_id (as str)."""

    async def query() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            return await connection.fetch(
                "SELECT transaction_id::text AS transaction_id, score, fraud_flag, reasons, transaction"
                " FROM fraud_scores WHERE transaction_id = ANY($1::uuid[])",
                list(transaction_ids),
            )
        finally:
            await connection.close()

    rows = asyncio.run(query())
    columns = ["transaction_id", "score", "fraud_flag", "reasons", "transaction"]
    return pd.DataFrame([dict(row) for row in rows], columns=columns).set_index("transaction_id")


def count_rows(settings: Settings, transaction_ids: list[str]) -> int:
    return len(fetch_scores(settings, transaction_ids))


def _kafka_log(services: tuple[ServiceProcess, ...], lines: int = 15) -> str:
    """The end of the broker's log, for a timeout that the services' logs do not explain."""
    if not services:
        return ""
    log = services[0].settings.data_dir / "kafka" / "kafka.log"
    if not log.exists():
        return ""
    return "--- kafka ---\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def read_all(settings: Settings, topic: str, expected: int) -> list[dict]:
    """At least ``expected`` messages of ``topic`` from its start: value and headers (as a dict)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": f"audit-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    consumer.subscribe([topic])
    found: list[dict] = []
    try:
        wait_for(lambda: _collect(consumer, found) >= expected, 60, f"{expected} messages in {topic}")
    finally:
        consumer.close()
    return found


def _collect(consumer: Consumer, found: list[dict]) -> int:
    for message in consumer.consume(1000, 1):
        if not message.error():
            found.append({"value": message.value(), "headers": dict(message.headers() or [])})
    return len(found)


def execute(settings: Settings, statement: str, *rows: tuple) -> None:
    """Run ``statement`` once per row, as the writing role."""

    async def run() -> None:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            await connection.executemany(statement, rows)
        finally:
            await connection.close()

    asyncio.run(run())


def fetch(settings: Settings, query: str, *arguments: object) -> list[dict]:
    async def run() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            return await connection.fetch(query, *arguments)
        finally:
            await connection.close()

    return [dict(row) for row in asyncio.run(run())]


def labels_of(settings: Settings, transaction_id: uuid.UUID) -> list[dict]:
    return fetch(
        settings,
        "SELECT label, source, author, note FROM fraud_labels WHERE transaction_id = $1 ORDER BY id",
        transaction_id,
    )


def input_rows(count: int, seed: int) -> list[dict]:
    """``count`` generated input rows (the 17 columns) as dicts."""
    return transactions(count, seed=seed).to_dict("records")


def insert_score(
    settings: Settings,
    score: float,
    flag: int,
    row: dict | None,
    scored_at: datetime | None = None,
    reasons: list[dict] | None = None,
) -> uuid.UUID:
    """A fraud_scores row written directly (scored now unless ``scored_at``); its transaction id."""
    transaction_id = uuid.uuid4()
    execute(
        settings,
        "INSERT INTO fraud_scores (transaction_id, score, fraud_flag, model_version, reasons, transaction,"
        " scored_at) VALUES ($1, $2, $3, 'test', $4::jsonb, $5::jsonb, coalesce($6, now()))",
        (transaction_id, score, flag, _json(reasons), _json(row), scored_at),
    )
    return transaction_id


def _json(value: object) -> str | None:
    return None if value is None else orjson.dumps(value).decode()
