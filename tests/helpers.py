"""Test helpers that drive the real system: service processes, and reading what landed."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pandas as pd
from confluent_kafka import KafkaException

from fraudstream.config import Settings
from fraudstream.infra.process import wait_until
from fraudstream.ml.model import METADATA_FILE, MODEL_FILE
from fraudstream.ops.supervisor import ServiceProcess
from fraudstream.pipeline import kafka


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
    """``wait_until``, whose failure shows the services' output and, with services, the broker's log."""
    broker_log = [services[0].settings.data_dir / "kafka" / "kafka.log"] if services else []
    wait_until(check, timeout, what, *(service.output for service in services), *broker_log)


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
