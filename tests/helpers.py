"""Test helpers that drive the real system: service processes, and reading what landed."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import asyncpg
import orjson
import pandas as pd
from confluent_kafka import KafkaException

from fraudstream.config import Settings
from fraudstream.infra.process import InfraError, wait_until
from fraudstream.ml.model import METADATA_FILE, MODEL_FILE
from fraudstream.ops.loadgen import transactions
from fraudstream.ops.supervisor import ServiceProcess
from fraudstream.pipeline import kafka
from fraudstream.pipeline.producer import TransactionProducer


@contextmanager
def running_pipeline(settings: Settings, instance: str = "test") -> Iterator[dict[str, ServiceProcess]]:
    """A detector and a sink as real processes, ready, stopped on exit."""
    services = {
        "detector": ServiceProcess("detector", settings, "--instance", instance),
        "sink": ServiceProcess("sink", settings),
    }
    with running(services):
        yield services


@contextmanager
def running(services: dict[str, ServiceProcess]) -> Iterator[None]:
    """``services`` started and ready; stopped on exit."""
    for service in services.values():
        service.start()
    try:
        for service in services.values():
            service.wait_ready()
        yield
    finally:
        for service in services.values():
            service.stop()


def wait_for(
    check: Callable[[], bool],
    timeout: float,
    what: str,
    *services: ServiceProcess,
    progress: Callable[[], str] | None = None,
) -> None:
    """``wait_until``, whose failure shows the services' output and, with services, the brokers' logs;
    first, ``progress()``: how far the work got (the logs' tails are long)."""
    kafka_dir = services[0].settings.data_dir / "kafka" if services else None
    # One broker's log, or each node's of a cluster; not a recursive walk, which races the broker
    # deleting a topic's directory.
    broker_logs = sorted([*kafka_dir.glob("kafka.log"), *kafka_dir.glob("*/kafka.log")]) if kafka_dir else []
    try:
        wait_until(check, timeout, what, *(service.output for service in services), *broker_logs)
    except InfraError as error:
        if progress is None:
            raise
        raise InfraError(f"{progress()}; {error}") from None


def pipeline_progress(settings: Settings, ids: list[str]) -> Callable[[], str]:
    """How far ``ids`` got through the pipeline: input offsets, committed score messages, rows."""

    def report() -> str:
        try:
            scored = committed_score_ids(settings)
            scores = sum(1 for transaction_id in ids if transaction_id in scored)
            inputs = end_offsets(settings, settings.topic_transactions)
        except (KafkaException, InfraError) as error:
            return f"progress unknown ({error})"
        rows = count_rows(settings, ids)
        return (
            f"of {len(ids)} transactions: {scores} score messages committed in {settings.topic_scoring}, "
            f"{rows} rows in fraud_scores; end offsets of {settings.topic_transactions}: {inputs}"
        )

    return report


def stream_while(
    settings: Settings, fault: Callable[[], None], seed: int, rows: int, rate: float
) -> list[str]:
    """Send ``rows`` transactions at ``rate`` while ``fault`` runs; return their ids once all are
    acknowledged (and ``fault`` has ended)."""
    frame = transactions(rows, seed=seed)
    sent: dict[str, list[str]] = {}

    def send() -> None:
        sent["ids"] = TransactionProducer(settings).send(frame, rate=rate).transaction_ids

    sender = threading.Thread(target=send)
    sender.start()
    try:
        fault()
    finally:
        sender.join()
    return sent["ids"]


def committed_score_ids(settings: Settings) -> Counter[str]:
    """transaction_id -> number of committed score messages, reading the whole scoring topic."""
    messages = kafka.read_topic(settings, settings.topic_scoring, f"audit-{uuid.uuid4()}", 120)
    return Counter(orjson.loads(message.value())["transaction_id"] for message in messages)


def assert_exactly_once(settings: Settings, ids: list[str], *services: ServiceProcess) -> None:
    """One fraud_scores row per transaction of ``ids``, and one committed score message each."""
    wait_for(lambda: count_rows(settings, ids) == len(ids), 180, f"{len(ids)} rows", *services)
    messages = committed_score_ids(settings)
    duplicates = {tid: n for tid, n in messages.items() if n > 1}
    assert duplicates == {}
    assert set(ids) <= set(messages)
    assert count_rows(settings, ids) == len(ids)


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
                "SELECT transaction_id::text AS transaction_id, score, fraud_flag, reasons, transaction,"
                " decision, rules FROM fraud_scores WHERE transaction_id = ANY($1::uuid[])",
                list(transaction_ids),
            )
        finally:
            await connection.close()

    rows = asyncio.run(query())
    columns = ["transaction_id", "score", "fraud_flag", "reasons", "transaction", "decision", "rules"]
    return pd.DataFrame([dict(row) for row in rows], columns=columns).set_index("transaction_id")


def count_rows(settings: Settings, transaction_ids: list[str]) -> int:
    return len(fetch_scores(settings, transaction_ids))


def model_with_threshold(source: Path, folder: Path, threshold: float) -> Path:
    """A copy of the model directory ``source`` in ``folder`` whose metadata names ``threshold``."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / MODEL_FILE, folder / MODEL_FILE)
    metadata = json.loads((source / METADATA_FILE).read_text())
    (folder / METADATA_FILE).write_text(json.dumps({**metadata, "threshold": threshold}))
    return folder


def end_offsets(settings: Settings, topic: str) -> list[int]:
    """The end offset of each partition of ``topic``, once they have leaders: the session's topics are
    new, and right after creation a broker answers NOT_LEADER_FOR_PARTITION for a moment."""
    ends: list[int] = []

    def read() -> bool:
        try:
            ends[:] = list(kafka.end_offsets(reader, topic, 10).values())
        except KafkaException:
            return False
        return True

    with kafka.consumer(settings, "test-end-offsets") as reader:
        wait_for(read, 30, f"the end offsets of {topic}")
    return ends


def read_all(settings: Settings, topic: str, expected: int) -> list[dict]:
    """The committed messages of ``topic`` once there are ``expected`` of them: value and headers."""
    found: list = []

    def enough() -> bool:
        found[:] = kafka.read_topic(settings, topic, f"audit-{uuid.uuid4()}", 30)
        return len(found) >= expected

    wait_for(enough, 60, f"{expected} messages in {topic}")
    return [{"value": message.value(), "headers": dict(message.headers() or [])} for message in found]


async def admin(settings: Settings, statement: str) -> None:
    """Run ``statement`` alone, outside a transaction (CREATE DATABASE), as the settings' role."""
    connection = await asyncpg.connect(settings.pg_dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


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
    """A fraud_scores row written directly (scored now unless ``scored_at``, its day's partition created
    if missing); its transaction id."""
    transaction_id = uuid.uuid4()
    if scored_at is not None:
        execute(settings, "SELECT fraud_scores_add_partitions($1::timestamptz[])", ([scored_at],))
    execute(
        settings,
        "INSERT INTO fraud_scores (transaction_id, score, fraud_flag, model_version, reasons, transaction,"
        " scored_at) VALUES ($1, $2, $3, 'test', $4::jsonb, $5::jsonb, coalesce($6, now()))",
        (transaction_id, score, flag, _json(reasons), _json(row), scored_at),
    )
    return transaction_id


def add_flagged(settings: Settings, count: int, category: str) -> None:
    """``count`` flagged transactions of ``category`` scored now, with distinct scores in (0.5, 1)."""
    execute(
        settings,
        "INSERT INTO fraud_scores (transaction_id, score, fraud_flag, model_version, transaction)"
        " SELECT gen_random_uuid(), 0.5 + g / (2.0 * $1 + 2), 1, 'test',"
        " jsonb_build_object('cat_id', $2::text) FROM generate_series(1, $1) AS g",
        (count, category),
    )


def _json(value: object) -> str | None:
    return None if value is None else orjson.dumps(value).decode()
