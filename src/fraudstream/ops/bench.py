"""`fraudstream bench`: throughput and latency of the real pipeline, against a per-message baseline.

Every stage runs on topics and consumer groups of its own, so stages neither see each other's data nor
the system's; the rows they write to fraud_scores are deleted at the end. Stages:

- detector alone: detector processes start and settle in their group, N transactions are produced as
  fast as possible, and the detectors are timed from the end of production to their last committed
  batch (start-up, rebalances and the producer's CPU excluded);
- sink alone: the same on the detector stage's score messages, up to committed rows;
- end to end: services running, N transactions (generated beforehand) produced as fast as possible,
  timed from the first produce call (the producer's preparation included) until the last row is
  committed in PostgreSQL;
- at each offered rate (``latency_rates``): after a warm-up at that rate, the produce-to-committed
  time of each row from its Kafka timestamp, and the CPU time of every process of the stack over the
  measured window (``cpu.py``: broker, PostgreSQL, detectors, sink; the load generator apart), as
  cores and as CPU milliseconds per transaction; after the last rate's traffic, the same stack's CPU
  with no traffic (``idle_cpu_cores``);
- baseline: the seed's detector in this process (one message, one DataFrame, predict twice, flush
  each) over the first messages of the same input.

With rules (``BenchPlan.rules``, from ``--rules FILE``), every stage's rules topic holds them before its
services start, so its detectors apply them to every batch.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson
import pandas as pd
from confluent_kafka import Consumer, Producer, TopicPartition

from fraudstream.config import Settings
from fraudstream.contracts.schema import coerce
from fraudstream.infra.process import wait_until
from fraudstream.infra.stack import LocalStack
from fraudstream.infra.topics import ensure_topics, topic_specs
from fraudstream.ml.features import FeatureEngine
from fraudstream.ml.model import FraudModel, resolve_threshold
from fraudstream.ops.cpu import LOAD_GENERATOR, CpuUse, CpuWindow, Tracked, measure_idle
from fraudstream.ops.loadgen import transactions
from fraudstream.ops.supervisor import ServiceProcess
from fraudstream.pipeline import kafka
from fraudstream.pipeline.producer import TransactionProducer
from fraudstream.pipeline.rules_feed import publish
from fraudstream.rules.rule import Rule

Say = Callable[[str], None]


@dataclass(frozen=True)
class BenchPlan:
    rows: int = 200_000
    latency_rates: tuple[float, ...] = (1000.0,)
    latency_seconds: float = 30.0
    warm_up_seconds: float = 5.0
    baseline_rows: int = 2000
    detectors: int = 1
    timeout_s: float = 600.0
    rules: tuple[Rule, ...] = ()  # published to each stage's rules topic
    idle_seconds: float = 10.0


@dataclass(frozen=True)
class AtRate:
    """The latency stage at one offered rate: latency percentiles (ms), the rate the load generator
    reached, and the CPU of the measured window."""

    latency_ms: dict[str, float]
    achieved_tps: float
    cpu: CpuUse
    transactions: int


def rate_key(rate: float) -> str:
    """A rate as a JSON key: ``1000.0`` -> ``"1000"``."""
    return f"{rate:g}"


def run(settings: Settings, plan: BenchPlan, say: Say) -> dict[str, Any]:
    """One full benchmark run; numbers only in the result (rates in rows/s, latencies in ms, CPU in
    cores and CPU milliseconds per transaction; figures at a rate keyed by ``rate_key``)."""
    stack = LocalStack.from_settings(settings)
    stack.up()
    bench = _Bench(settings, plan, say, stack)
    try:
        detector_tps, sink_tps = bench.stages_alone()
        e2e_tps = bench.end_to_end()
        at_rate, idle = bench.at_rates()
        baseline_tps = bench.baseline()
    finally:
        bench.clean_up()
    return {
        "rows": plan.rows,
        "detectors": plan.detectors,
        "rules": sum(rule.enabled for rule in plan.rules),
        "e2e_tps": round(e2e_tps, 1),
        "detector_tps": round(detector_tps, 1),
        "sink_tps": round(sink_tps, 1),
        "baseline_tps": round(baseline_tps, 1),
        "ratio_vs_baseline": round(e2e_tps / baseline_tps, 1),
        **_rate_figures(at_rate),
        "idle_cpu_cores": idle.cores(),
    }


def _rate_figures(at_rate: dict[str, AtRate]) -> dict[str, dict[str, Any]]:
    return {
        "latency_ms": {key: figures.latency_ms for key, figures in at_rate.items()},
        "achieved_tps_at_rate": {key: round(figures.achieved_tps, 1) for key, figures in at_rate.items()},
        "cpu_cores_at_rate": {key: figures.cpu.cores() for key, figures in at_rate.items()},
        "cpu_ms_per_tx_at_rate": {
            key: figures.cpu.ms_per_message(figures.transactions) for key, figures in at_rate.items()
        },
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over ``runs`` (nested figures too), with the runs themselves under
    ``runs``; the ratios are those of the medians."""
    result = _median_of(runs)
    result["ratio_vs_baseline"] = round(result["e2e_tps"] / result["baseline_tps"], 1)
    return {**result, "runs": runs}


def _median_of(values: list[Any]) -> Any:
    if isinstance(values[0], dict):
        return {key: _median_of([value[key] for value in values]) for key in values[0]}
    return statistics.median(values)


class _Bench:
    def __init__(self, settings: Settings, plan: BenchPlan, say: Say, stack: LocalStack) -> None:
        self.settings = settings
        self.stack = stack
        self.plan = plan
        self.say = say
        self.run_id = uuid.uuid4().hex[:8]
        self.stages: list[Settings] = []
        self.transaction_ids: list[str] = []
        self.admin = kafka.admin(settings)
        self.reader = Consumer(kafka.consumer_config(settings, f"bench-{self.run_id}-reader"))
        self.members: dict[str, Consumer] = {}

    def stage(self, name: str) -> Settings:
        stage = self.settings.scoped(f"bench-{self.run_id}-{name}").model_copy(
            update={"log_dir": self.settings.log_dir / "bench"}
        )
        ensure_topics(stage)
        self.stages.append(stage)
        for rule in self.plan.rules:
            publish(stage, rule)
        return stage

    def produce(self, stage: Settings, frame: pd.DataFrame, rate: float | None = None) -> float:
        report = TransactionProducer(stage).send(frame, rate=rate)
        self.transaction_ids.extend(report.transaction_ids)
        return report.seconds

    def stages_alone(self) -> tuple[float, float]:
        stage = self.stage("alone")
        frame = transactions(self.plan.rows, seed=1)
        with self.services(stage, "detector"):
            self.say(f"detector alone: {self.plan.rows:,} transactions into the settled group")
            self.produce(stage, frame)
            detector_tps = self.drain(stage.detector_group, stage.topic_transactions, "detector")
        with self.services(stage, "sink"):
            sink_tps = self.drain(stage.sink_group, stage.topic_scoring, "sink")
        return detector_tps, sink_tps * self.plan.rows / self.end_offset(stage.topic_scoring)

    def end_to_end(self) -> float:
        stage = self.stage("e2e")
        with self.services(stage, "detector", "sink"):
            self.say(f"end to end: {self.plan.rows:,} transactions as fast as possible")
            frame = transactions(self.plan.rows, seed=2)
            started = time.perf_counter()
            self.produce(stage, frame)
            self.wait_scored(stage)
            return self.plan.rows / (time.perf_counter() - started)

    def at_rates(self) -> tuple[dict[str, AtRate], CpuUse]:
        """The latency stage at every rate of the plan, and the stack's idle CPU after the last one."""
        figures, idle = {}, None
        for number, rate in enumerate(self.plan.latency_rates, start=1):
            last = number == len(self.plan.latency_rates)
            figures[rate_key(rate)], idle = self.at_rate(rate, measure_idle_after=last)
        return figures, idle

    def at_rate(self, rate: float, measure_idle_after: bool) -> tuple[AtRate, CpuUse | None]:
        """Produce-to-committed latency and the stack's CPU at a fixed rate, after a warm-up at that
        rate (not counted): the first second of freshly started services is a start-up transient, not
        the steady state. The CPU window runs from the first measured message to the last row stored."""
        stage, plan = self.stage(f"rate-{rate_key(rate)}"), self.plan
        warm_up = transactions(int(rate * plan.warm_up_seconds), seed=4)
        measured = transactions(int(rate * plan.latency_seconds), seed=3)
        idle = None
        with self.services(stage, "detector", "sink") as running:
            self.say(f"latency: {rate:,.0f} tx/s, {plan.warm_up_seconds:.0f} s of warm-up")
            self.produce(stage, warm_up, rate=rate)
            first = len(self.transaction_ids)
            self.say(f"latency and CPU: {rate:,.0f} tx/s for {plan.latency_seconds:.0f} s")
            tracked = self.tracked(running)
            window = CpuWindow([*tracked, Tracked(LOAD_GENERATOR, (os.getpid(),), tree=False)]).start()
            sent_in = self.produce(stage, measured, rate=rate)
            self.wait_scored(stage, len(warm_up) + len(measured))
            cpu = window.stop()
            if measure_idle_after:
                self.say(f"idle CPU: the running stack with no traffic for {plan.idle_seconds:.0f} s")
                idle = measure_idle(tracked, plan.idle_seconds)
        latency = asyncio.run(_latencies(self.settings, self.transaction_ids[first:]))
        return AtRate(latency, len(measured) / sent_in, cpu, len(measured)), idle

    def tracked(self, running: list[ServiceProcess]) -> list[Tracked]:
        """The stack's processes: the broker, PostgreSQL's postmaster and children, the services."""
        servers = {"broker": self.stack.kafka.pid(), "postgres": self.stack.postgres.pid()}
        missing = [name for name, pid in servers.items() if pid is None]
        if missing:
            raise RuntimeError(f"no running process found for {', '.join(missing)}")
        entries = [Tracked(name, (pid,)) for name, pid in servers.items()]
        for name in dict.fromkeys(service.name for service in running):
            pids = tuple(service.process.pid for service in running if service.name == name)
            entries.append(Tracked(name, pids))
        return entries

    def baseline(self) -> float:
        """The seed's detector: per message a DataFrame, features, predict twice, produce and flush."""
        source, target = self.stages[0], self.stage("baseline")
        rows = self.plan.baseline_rows
        self.say(f"baseline: the seed's per-message detector on {rows:,} messages")
        model = FraudModel.load(self.settings.model_path)
        threshold = resolve_threshold(self.settings.threshold, model.metadata).value
        engine = FeatureEngine()
        consumer = Consumer(
            kafka.consumer_config(
                self.settings, f"bench-{self.run_id}-baseline", **{"auto.offset.reset": "earliest"}
            )
        )
        consumer.subscribe([source.topic_transactions])
        producer = Producer(kafka.client_config(self.settings))
        done, started = 0, None
        try:
            while done < rows:
                message = consumer.poll(1.0)
                if message is None or message.error():
                    continue
                started = started or time.perf_counter()
                data = orjson.loads(message.value())
                features = engine.transform(coerce(pd.DataFrame([data["data"]])))
                score = model.predict(features)[0]
                flag = int(model.predict(features)[0] > threshold)
                value = orjson.dumps(
                    [{"score": float(score), "fraud_flag": flag, "transaction_id": data["transaction_id"]}]
                )
                producer.produce(target.topic_scoring, value)
                producer.flush()
                done += 1
        finally:
            consumer.close()
        return rows / (time.perf_counter() - started)

    @contextmanager
    def services(self, stage: Settings, *names: str) -> Iterator[list[ServiceProcess]]:
        running = []
        for name in names:
            copies = self.plan.detectors if name == "detector" else 1
            for index in range(copies):
                args = ("--instance", f"bench-{self.run_id}-{index}") if name == "detector" else ()
                running.append(ServiceProcess(name, stage, *args))
        try:
            for service in running:
                service.start()
            for service in running:
                service.wait_ready(120)
            for name in names:
                group = [service for service in running if service.name == name]
                wait_until(lambda group=group: _settled(group, stage.topic_partitions), 120, f"{name} group")
            yield running
        finally:
            for service in running:
                service.stop()

    def drain(self, group: str, topic: str, what: str) -> float:
        """Offsets per second of ``group`` from now (its first committed batch, if later) to the end
        of ``topic``.

        Offsets of the scoring topic include transaction markers; the sink stage's rate is scaled back
        to rows by the caller.
        """
        target = self.end_offset(topic)
        first_time, first_count = None, 0
        deadline = time.monotonic() + self.plan.timeout_s
        while time.monotonic() < deadline:
            committed = self.committed(group, topic)
            now = time.perf_counter()
            if committed > 0 and first_time is None:
                first_time, first_count = now, committed
            if committed >= target:
                if first_time == now:
                    raise RuntimeError(f"{what} had drained {topic} before it was measured: use more --rows")
                self.say(f"{what}: {committed:,} offsets")
                return (committed - first_count) / (now - first_time)
            time.sleep(0.05)
        raise TimeoutError(f"{what} did not reach offset {target} of {topic} in {self.plan.timeout_s:.0f} s")

    def wait_scored(self, stage: Settings, rows: int | None = None) -> None:
        """Until the detector has taken every transaction and the sink has committed every score."""
        rows = self.plan.rows if rows is None else rows
        deadline = time.monotonic() + self.plan.timeout_s
        while time.monotonic() < deadline:
            detected = self.committed(stage.detector_group, stage.topic_transactions) >= rows
            if detected and self.committed(stage.sink_group, stage.topic_scoring) >= self.end_offset(
                stage.topic_scoring
            ):
                return
            time.sleep(0.02)
        raise TimeoutError(f"{rows} rows not scored and stored in {self.plan.timeout_s:.0f} s")

    def end_offset(self, topic: str) -> int:
        return sum(kafka.end_offsets(self.reader, topic, 10).values())

    def committed(self, group: str, topic: str) -> int:
        """``group``'s committed offsets on ``topic``, summed, asked by a consumer of the group kept
        for the run (polled every few milliseconds)."""
        if group not in self.members:
            self.members[group] = Consumer(kafka.consumer_config(self.settings, group))
        asked = [TopicPartition(topic, partition) for partition in range(self.settings.topic_partitions)]
        return sum(kafka.committed_offsets(self.members[group], asked, 10).values())

    def clean_up(self) -> None:
        """Delete the bench's topics and its rows in fraud_scores."""
        topics = [spec.name for stage in self.stages for spec in topic_specs(stage)]
        existing = self.admin.list_topics(timeout=10).topics
        doomed = [topic for topic in topics if topic in existing]
        if doomed:
            for future in self.admin.delete_topics(doomed, operation_timeout=30).values():
                future.result()
        asyncio.run(_delete_rows(self.settings, self.transaction_ids))
        for client in [self.reader, *self.members.values()]:
            client.close()


def _settled(services: list[ServiceProcess], partitions: int) -> bool:
    """Every partition held by exactly one member, and every member busy if there are enough partitions:
    measuring before the group settles would time its rebalances."""
    held = [len(service.health().get("assigned_partitions", [])) for service in services]
    return sum(held) == partitions and (len(services) > partitions or all(held))


async def _latencies(settings: Settings, transaction_ids: list[str]) -> dict[str, float]:
    connection = await asyncpg.connect(settings.pg_dsn)
    try:
        row = await connection.fetchrow(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50,
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
                   percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
                   max(ms) AS max
            FROM (SELECT extract(epoch FROM scored_at - produced_at) * 1000 AS ms
                  FROM fraud_scores WHERE transaction_id = ANY($1::uuid[])) AS latency
            """,
            transaction_ids,
        )
    finally:
        await connection.close()
    return {key: round(float(value), 1) for key, value in dict(row).items()}


async def _delete_rows(settings: Settings, transaction_ids: list[str]) -> None:
    connection = await asyncpg.connect(settings.pg_dsn)
    try:
        async with connection.transaction():
            await connection.execute("CREATE TEMP TABLE bench_ids (transaction_id uuid) ON COMMIT DROP")
            await connection.copy_records_to_table(
                "bench_ids", records=[(uuid.UUID(t),) for t in transaction_ids], columns=["transaction_id"]
            )
            await connection.execute(
                "DELETE FROM fraud_scores f USING bench_ids b WHERE f.transaction_id = b.transaction_id"
            )
    finally:
        await connection.close()
