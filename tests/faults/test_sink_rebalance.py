"""Two sinks in one group, rebalanced while they work through a backlog: every row lands once, both stay up.

A commit that a rebalance made impossible (the partitions went to the other sink, or the group moved
to a new generation while the commit was in flight) can never succeed: the sink must give that
commit up and go on, not retry it forever. The partitions' new owner re-reads them from the last
committed offset, and the rows are idempotent. Whether a given rebalance catches a commit in flight
is a race, so this test does not require one: tests/integration/test_commit_given_up.py makes that
commit impossible on purpose.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import orjson
import pytest
from confluent_kafka import Producer

from fraudstream.config import Settings
from fraudstream.infra.topics import ensure_topics
from fraudstream.ops.supervisor import ServiceProcess
from fraudstream.pipeline import kafka
from tests.helpers import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]

BURST = 200_000  # score messages sent before each rebalance: seconds of work for the sinks
REBALANCES = 3


class ScoreFeed:
    """Score messages of one model version (the test's tag) into ``scoring``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.version = f"rebalance-{uuid.uuid4().hex[:8]}"
        self.sent = 0
        self._producer = Producer(kafka.producer_config(settings, **{"linger.ms": 20}))

    def send(self, count: int) -> None:
        """Send ``count`` messages and wait until all are acknowledged."""
        for _ in range(count):
            transaction_id = str(uuid.uuid4())
            message = {
                "transaction_id": transaction_id,
                "score": 0.25,
                "fraud_flag": 0,
                "model_version": self.version,
            }
            while True:
                try:
                    self._producer.produce(
                        self.settings.topic_scoring, orjson.dumps(message), transaction_id.encode()
                    )
                    break
                except BufferError:
                    self._producer.poll(0.05)
        assert self._producer.flush(30) == 0
        self.sent += count


def stored_rows(settings: Settings, version: str) -> tuple[int, int]:
    """(rows, distinct transaction ids) of this model version in fraud_scores."""

    async def query() -> asyncpg.Record:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            return await connection.fetchrow(
                "SELECT count(*) AS n, count(DISTINCT transaction_id) AS d FROM fraud_scores"
                " WHERE model_version = $1",
                version,
            )
        finally:
            await connection.close()

    row = asyncio.run(query())
    return row["n"], row["d"]


@pytest.fixture
def scoped(stack_settings: Settings) -> Settings:
    settings = stack_settings.scoped(f"rebalance-{uuid.uuid4().hex[:6]}")
    ensure_topics(settings)
    return settings


@pytest.fixture
def sinks(scoped: Settings) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    first, second = ServiceProcess("sink", scoped), ServiceProcess("sink", scoped)
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def has_partitions(sink: ServiceProcess) -> bool:
    return bool((sink.health() or {}).get("assigned_partitions"))


def output(sink: ServiceProcess) -> str:
    return sink.output.read_text(errors="replace") if sink.output.exists() else ""


def test_two_sinks_rebalanced_under_a_backlog_store_every_row_once(scoped, sinks):
    first, second = sinks
    feed = ScoreFeed(scoped)
    feed.send(BURST)
    first.start()
    wait_for(lambda: stored_rows(scoped, feed.version)[0] > 0, 60, "the first rows", first)

    for rebalance in range(REBALANCES):
        if rebalance:
            feed.send(BURST)  # the first sink is busy committing batch after batch...
        second.start()  # ...when the group rebalances to give the second sink partitions...
        wait_for(lambda: has_partitions(second), 60, "the second sink's partitions", first, second)
        second.stop()  # ...and again when it leaves
    second.start()  # both in the group from here on
    sent = feed.sent

    wait_for(lambda: stored_rows(scoped, feed.version)[0] == sent, 180, f"{sent} rows", first, second)
    assert stored_rows(scoped, feed.version) == (sent, sent)
    assert first.process.poll() is None and second.process.poll() is None, "a sink died"
    logs = output(first) + output(second)
    retried = [line for line in logs.splitlines() if '"kafka commit failed, retrying"' in line]
    assert not [line for line in retried if "CommitFailedError" in line or "IllegalStateError" in line]
