"""`fraudstream bench-rebalance`: what a detector group's rebalance costs (docs/scaling.md).

Two figures, each on topics of its own on the configured Kafka:

- the restore of one partition's state: the changelog partition is filled with the state of N
  customers (the load generator's, about ``events_per_customer`` transactions each, computed by the
  real ``FeatureEngine``), then read back and loaded as a detector does when it is assigned the
  partition (``Changelog.restore`` + ``PartitionedState.add``);
- the pause of a scale-up: one detector scores a steady stream, a second joins the group; the pause of
  the first is the time between its last batch before and its first batch after the rebalance, as it
  logs it (``first batch after rebalance``), and the time the second took to restore what it took.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Producer

from fraudstream.config import Settings
from fraudstream.infra.process import wait_until
from fraudstream.infra.stack import LocalStack
from fraudstream.infra.topics import topic_specs
from fraudstream.ml.features import FeatureEngine
from fraudstream.ops.bench import stage_settings
from fraudstream.ops.loadgen import transactions
from fraudstream.ops.supervisor import ServiceProcess
from fraudstream.pipeline import kafka
from fraudstream.pipeline.detector.changelog import Changelog
from fraudstream.pipeline.detector.state import PartitionedState
from fraudstream.pipeline.producer import TransactionProducer

Say = Callable[[str], None]
CHUNK = 50_000  # customers whose state is computed and written at a time


@dataclass(frozen=True)
class RebalancePlan:
    customers: tuple[int, ...] = (100_000, 1_000_000)  # in the one partition restored
    events_per_customer: int = 5
    stream_rows: int = 60_000  # the scale-up's stream
    stream_rate: float = 2_000.0
    stream_customers: int = 100_000


def run(settings: Settings, plan: RebalancePlan, say: Say) -> dict[str, Any]:
    """Both figures; numbers only (seconds, milliseconds, counts)."""
    LocalStack.from_settings(settings).up()
    restores = [restore(settings, count, plan.events_per_customer, say) for count in plan.customers]
    return {"restore": restores, "scale_up": scale_up(settings, plan, say)}


def restore(settings: Settings, customers: int, events_per_customer: int, say: Say) -> dict[str, Any]:
    """Seconds to read one changelog partition holding ``customers`` customers' state, and to load it;
    and the CPU seconds of the whole restore, which a busy machine stretches less than the wall clock."""
    stage = _stage(settings, f"restore-{customers}")
    try:
        written = _fill_changelog(stage, customers, events_per_customer, say)
        say(f"restoring {written:,} customers' state")
        started, cpu = time.perf_counter(), time.process_time()
        states = Changelog(stage).restore([0])
        read_s = time.perf_counter() - started
        state = PartitionedState()
        state.add(0, states[0])
        total_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    finally:
        _delete_topics(stage)
    return {
        "customers": state.customers(0),
        "read_s": round(read_s, 2),
        "load_s": round(total_s - read_s, 2),
        "restore_s": round(total_s, 2),
        "restore_cpu_s": round(cpu_s, 2),  # of this process, librdkafka's threads included
    }


def scale_up(settings: Settings, plan: RebalancePlan, say: Say) -> dict[str, Any]:
    """A second detector joins one scoring a steady stream: the pause the first saw, and what the
    second restored and how long it took."""
    stage = _stage(settings, "scale-up")
    first, second = (ServiceProcess("detector", stage, "--instance", name) for name in ("first", "second"))
    frame = transactions(plan.stream_rows, customer_count=plan.stream_customers, seed=7)
    sender = threading.Thread(target=lambda: TransactionProducer(stage).send(frame, rate=plan.stream_rate))
    try:
        first.start()
        first.wait_ready()
        say(f"streaming {plan.stream_rows:,} transactions at {plan.stream_rate:,.0f}/s, then a second joins")
        sender.start()
        time.sleep(plan.stream_rows / plan.stream_rate / 3)
        second.start()
        sender.join()
        wait_until(lambda: bool(second.health().get("assigned_partitions")), 120, "the second's partitions")
        wait_until(lambda: bool(_events(first, "first batch after rebalance")), 60, "the first's pause")
        pauses = [event["paused_ms"] for event in _events(first, "first batch after rebalance")]
        gains = [event for event in _events(second, "partitions assigned") if event["partitions"]]
    finally:
        for service in (first, second):
            service.stop()
        _delete_topics(stage)
    return {
        "first_paused_ms": pauses,
        "second_partitions": [event["partitions"] for event in gains],
        "second_customers_restored": sum(event["customers_restored"] for event in gains),
        "second_restore_ms": [event["restore_ms"] for event in gains],
    }


def _stage(settings: Settings, name: str) -> Settings:
    return stage_settings(settings, f"bench-rebalance-{uuid.uuid4().hex[:6]}-{name}")


def _fill_changelog(stage: Settings, customers: int, events_per_customer: int, say: Say) -> int:
    """Changelog partition 0 filled with the state of about ``customers`` customers; how many."""
    producer = Producer(kafka.producer_config(stage))
    written = 0
    for first in range(0, customers, CHUNK):
        count = min(CHUNK, customers - first)
        frame = transactions(count * events_per_customer, customer_count=count, seed=first)
        frame["name_2"] = frame["name_2"] + f"-{first}"  # customers of one chunk only
        engine = FeatureEngine()
        engine.transform(frame)
        for customer, state in engine.export_state(engine.touched_customers()).items():
            _produce(producer, stage.topic_state, customer.encode(), state)
            written += 1
        say(f"changelog: {written:,} customers' state written")
    if producer.flush(120):
        raise TimeoutError("the changelog's state was not acknowledged in 120 s")
    return written


def _produce(producer: Producer, topic: str, key: bytes, value: bytes) -> None:
    while True:
        try:
            producer.produce(topic, value, key, partition=0)
            return
        except BufferError:
            producer.poll(0.05)


def _events(service: ServiceProcess, name: str) -> list[dict]:
    lines = service.output.read_text().splitlines() if service.output.exists() else []
    events = (orjson.loads(line) for line in lines if line.startswith("{"))  # librdkafka's lines are not
    return [event for event in events if event.get("event") == name]


def _delete_topics(stage: Settings) -> None:
    admin = kafka.admin(stage)
    for future in admin.delete_topics(
        [spec.name for spec in topic_specs(stage)], operation_timeout=30
    ).values():
        future.result()
