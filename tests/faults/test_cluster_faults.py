"""Faults on a three-broker cluster (replication factor 3, min.insync.replicas 2): brokers killed and
restarted one at a time, detectors and sinks killed, replaced, added and removed, all while 50,000
transactions stream in at 5,000 tx/s.

Every case ends the same way: one fraud_scores row per transaction, one committed score message per
transaction in `scoring` (read_committed), both groups' lag back to 0, nothing in the dead-letter
topics, and every partition of the cluster back in sync. `status` and a small `bench` with two
detectors and two sinks run on the cluster too. One cluster serves the whole module; each test has
topics and groups of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
from aiokafka import AIOKafkaClient
from aiokafka.client import CoordinationType
from confluent_kafka import KafkaException

from fraudstream.config import Settings
from fraudstream.infra.kafka import KafkaServer
from fraudstream.infra.stack import LocalStack
from fraudstream.infra.topics import ensure_topics
from fraudstream.ops import bench
from fraudstream.ops.status import topic_status
from fraudstream.ops.supervisor import ServiceProcess
from fraudstream.pipeline import kafka
from tests.conftest import local_stack
from tests.helpers import assert_exactly_once, end_offsets, running, stream_while, wait_for
from tests.integration.test_bench import SMALL

pytestmark = [pytest.mark.integration, pytest.mark.fault]

BROKERS = 3
ROWS = 50_000
RATE = 5_000  # tx/s: a ten-second stream
DOWN_S = 5.0  # how long a killed broker stays down


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalStack]:
    with local_stack("fraudstream-cluster-", brokers=BROKERS) as settings:
        yield LocalStack.from_settings(settings)


@pytest.fixture
def scoped(cluster: LocalStack, request: pytest.FixtureRequest) -> Settings:
    """Topics and groups of this test, on a cluster whose partitions are all in sync again."""
    wait_for(lambda: all_in_sync(cluster.settings), 120, "every partition of the cluster in sync")
    settings = cluster.settings.scoped(f"cluster-{request.node.originalname}-{uuid.uuid4().hex[:6]}")
    ensure_topics(settings)
    return settings


def all_in_sync(settings: Settings) -> bool:
    """Every broker up and every partition of the cluster (Kafka's own topics too) led and fully in sync."""
    try:
        metadata = kafka.admin(settings).list_topics(timeout=10)
    except KafkaException:  # no broker answered in time: not in sync, ask again
        return False
    topics = metadata.topics.values()
    return len(metadata.brokers) == BROKERS and all(
        topic_status(topic, len(topic.partitions))["ok"] for topic in topics
    )


def busiest_leader(cluster: LocalStack) -> KafkaServer:
    """The node that leads the most partitions of the cluster."""
    metadata = kafka.admin(cluster.settings).list_topics(timeout=10)
    led = Counter(p.leader for topic in metadata.topics.values() for p in topic.partitions.values())
    return cluster.kafka.node(led.most_common(1)[0][0])


def transaction_coordinator(cluster: LocalStack, settings: Settings, instance: str) -> KafkaServer:
    """The node coordinating the detector ``instance``'s transactions (a FindCoordinator request)."""

    async def find() -> int:
        client = AIOKafkaClient(**kafka.aiokafka_config(settings))
        await client.bootstrap()
        try:
            transactional_id = f"{settings.detector_group}-{instance}"
            return await client.coordinator_lookup(CoordinationType.TRANSACTION, transactional_id)
        finally:
            await client.close()

    return cluster.kafka.node(asyncio.run(find()))


def killed_and_restarted(choose: Callable[[], KafkaServer]) -> Callable[[], None]:
    """Two seconds into the stream, SIGKILL the node ``choose`` picks; restart it ``DOWN_S`` later."""

    def fault() -> None:
        time.sleep(2)
        node = choose()
        node.kill()
        time.sleep(DOWN_S)
        node.start()

    return fault


def assert_clean(settings: Settings, ids: list[str], services: list[ServiceProcess]) -> None:
    """Exactly once in the table and the scoring topic, lags back to 0, no dead letters."""
    assert_exactly_once(settings, ids, *services)
    groups = {
        settings.detector_group: settings.topic_transactions,
        settings.sink_group: settings.topic_scoring,
    }
    for group, topic in groups.items():
        wait_for(
            lambda group=group, topic=topic: kafka.group_lag(settings, group, topic, 10).get("lag") == 0,
            60,
            f"{group} lag 0",
            *services,
        )
    for topic in (settings.dlq_transactions, settings.dlq_scoring):
        assert sum(end_offsets(settings, topic)) == 0, f"dead letters in {topic}"


def test_the_broker_leading_most_partitions_killed_and_restarted(cluster, scoped, pipeline):
    fault = killed_and_restarted(lambda: busiest_leader(cluster))
    ids = stream_while(scoped, fault, 21, ROWS, RATE)
    assert_clean(scoped, ids, list(pipeline.values()))


def test_the_detectors_transaction_coordinator_killed_and_restarted(cluster, scoped, pipeline):
    fault = killed_and_restarted(lambda: transaction_coordinator(cluster, scoped, "fault-0"))
    ids = stream_while(scoped, fault, 22, ROWS, RATE)
    assert_clean(scoped, ids, list(pipeline.values()))


def test_a_rolling_restart_of_every_broker(cluster, scoped, pipeline):
    """Each node in turn stopped (a controlled shutdown), started, and caught up before the next."""

    def fault() -> None:
        for node in cluster.kafka.nodes:
            time.sleep(1)
            node.stop()
            node.start()
            wait_for(lambda: all_in_sync(scoped), 120, f"the cluster in sync after node {node.node_id}")

    ids = stream_while(scoped, fault, 23, ROWS, RATE)
    assert_clean(scoped, ids, list(pipeline.values()))


def members(settings: Settings, count: int, first: int = 0) -> list[ServiceProcess]:
    """``count`` detectors (instances ``first``, ...) and as many sinks, not started."""
    return [
        *(
            ServiceProcess("detector", settings, "--instance", f"fault-{n}")
            for n in range(first, first + count)
        ),
        *(ServiceProcess("sink", settings) for _ in range(count)),
    ]


def test_a_detector_and_a_sink_of_two_killed_and_replaced(scoped):
    """Two of each in their groups; one of each is SIGKILLed and a new process (a new detector instance:
    the dead one's open transaction is fenced by the group's generation) takes its place."""
    initial = members(scoped, 2)
    replacements = [
        ServiceProcess("detector", scoped, "--instance", "fault-2"),
        ServiceProcess("sink", scoped),
    ]
    everyone = initial + replacements

    def fault() -> None:
        time.sleep(3)
        for victim in (initial[0], initial[2]):  # the first detector and the first sink
            victim.kill()
        for replacement in replacements:
            replacement.start()

    with running({f"member-{n}": member for n, member in enumerate(initial)}):
        try:
            ids = stream_while(scoped, fault, 24, ROWS, RATE)
            assert_clean(scoped, ids, everyone)
        finally:
            for replacement in replacements:
                replacement.stop()


def test_the_groups_scaled_from_one_to_three_and_back_to_one(scoped):
    """One detector and one sink; two of each join mid-stream, then two of each leave with SIGTERM."""
    first, added = members(scoped, 1), members(scoped, 2, first=1)

    def fault() -> None:
        time.sleep(2)
        for member in added:
            member.start()
        for member in added:
            member.wait_ready()
        time.sleep(2)
        for member in added:
            member.terminate()
        for member in added:
            member.wait_or_kill()
            assert member.exit_code() == 0, f"{member.name} did not stop cleanly: see {member.output}"

    with running({f"member-{n}": member for n, member in enumerate(first)}):
        try:
            ids = stream_while(scoped, fault, 25, ROWS, RATE)
            assert_clean(scoped, ids, first + added)
        finally:
            for member in added:
                member.stop()


def status(settings: Settings) -> tuple[int, dict]:
    """`fraudstream status --json` as a user runs it: (exit code, report)."""
    run = subprocess.run(
        [sys.executable, "-m", "fraudstream", "status", "--json"],
        env={**os.environ, **settings.environment()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return run.returncode, json.loads(run.stdout)


def test_status_shows_each_broker_and_a_down_broker_as_under_replicated_partitions(cluster, scoped):
    code, report = status(scoped)
    assert code == 0 and report["healthy"] is True, report["kafka"]
    assert [broker["id"] for broker in report["kafka"]["brokers"]] == [1, 2, 3]
    assert sum(broker["controller"] for broker in report["kafka"]["brokers"]) == 1
    for partition in report["kafka"]["topics"][scoped.topic_transactions]["leaders"].values():
        assert sorted(partition["isr"]) == sorted(partition["replicas"]) == [1, 2, 3]
    node = cluster.kafka.node(3)
    node.kill()
    try:
        answers: list[tuple[int, dict]] = []
        wait_for(
            lambda: answers.append(status(scoped)) or answers[-1][0] != 0, 60, "status to see node 3 gone"
        )
        code, report = answers[-1]
        assert report["healthy"] is False and report["kafka"]["healthy"] is False
        assert scoped.topic_transactions + "[0]" in report["kafka"]["under_replicated"]
        assert 3 not in [broker["id"] for broker in report["kafka"]["brokers"]]
    finally:
        node.start()
    wait_for(lambda: status(scoped)[0] == 0, 120, "status healthy again with node 3 back")


def test_bench_runs_two_detectors_and_two_sinks_on_the_cluster(cluster):
    result = bench.run(cluster.settings, replace(SMALL, detectors=2, sinks=2, peer=False), lambda _: None)
    assert (result["brokers"], result["replication_factor"], result["detectors"], result["sinks"]) == (
        3,
        3,
        2,
        2,
    )
    assert all(result[figure] > 0 for figure in ("e2e_tps", "detector_tps", "sink_tps", "baseline_tps"))
    assert [
        topic for topic in kafka.admin(cluster.settings).list_topics(timeout=10).topics if "bench-" in topic
    ] == []
