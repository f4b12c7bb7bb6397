"""`fraudstream bench`: throughput and latency of the real pipeline, against a per-message baseline.

Every stage runs on topics and consumer groups of its own, so stages neither see each other's data nor
the system's; the rows they write to fraud_scores are deleted at the end. Stages:

- detector alone: detector processes start and settle in their group, N transactions are produced
  behind a gate (``_Gate``: held back from the read_committed detectors) and released at once, and the
  detectors are timed from the release to their last committed batch (start-up, rebalances and the
  producer's CPU excluded, and fast detectors cannot drain the backlog while it is produced);
- sink alone: the same on the detector stage's score messages, up to committed rows;
- limits (``limits.py``): Kafka's own producer and consumer performance tools over the same messages,
  a transactional pass-through (exactly-once alone) over the detector's backlog, CatBoost's predict
  alone on that backlog's features;
- the Quix Streams peer (``peers/``): the same features and model as an idiomatic Quix Streams
  application, over the first ``peer_rows`` of the detector's backlog (its scores checked against
  offline scoring), then at the everyday rate (its latency to visible output, and its CPU with the
  broker's);
- end to end: services running, N transactions (generated beforehand) produced as fast as possible,
  timed from the first produce call (the producer's preparation included) until the last row is
  committed in PostgreSQL;
- at each offered rate (``latency_rates``): after a warm-up at that rate, the produce-to-committed
  time of each row from its Kafka timestamp (and its two parts, before and after the detector produced
  the score: ``LATENCY_PARTS``), and the CPU time of every process of the stack over the
  measured window (``cpu.py``: broker, PostgreSQL, detectors, sink; the load generator apart), as
  cores and as CPU milliseconds per transaction; after the last rate's traffic, the same stack's CPU
  with no traffic (``idle_cpu_cores``);
- baseline: the seed's detector in this process (one message, one DataFrame, predict twice, flush
  each) over the first messages of the same input.

Each stage runs ``BenchPlan.detectors`` detector and ``BenchPlan.sinks`` sink processes against the
local Kafka of ``settings.kafka_brokers`` nodes (`--brokers 3`: topics replicated three times, two
in sync, so every acknowledged write has crossed to a second broker: the replication's cost is in
every figure).

Every throughput is also a ratio to the limits, the baseline and the peer of the same run (``ratios``):
ratios hold across machines where absolute figures do not.

With rules (``BenchPlan.rules``, from ``--rules FILE``), every stage's rules topic holds them before its
services start, so its detectors apply them to every batch.
"""

from __future__ import annotations

import asyncio
import os
import shutil
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
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from fraudstream.config import Settings
from fraudstream.contracts.schema import coerce
from fraudstream.infra.process import wait_until
from fraudstream.infra.stack import LocalStack
from fraudstream.infra.topics import ensure_topics
from fraudstream.ml.features import FeatureEngine
from fraudstream.ml.model import FraudModel, resolve_threshold
from fraudstream.ml.offline import score_frame
from fraudstream.ops import limits
from fraudstream.ops.cpu import LOAD_GENERATOR, CpuUse, CpuWindow, Tracked, measure_idle
from fraudstream.ops.loadgen import transactions
from fraudstream.ops.peers.quix import Arrivals, QuixPeer, interpreter, latencies, produced_at
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
    sinks: int = 1
    timeout_s: float = 600.0
    rules: tuple[Rule, ...] = ()  # published to each stage's rules topic
    idle_seconds: float = 10.0
    peer: bool = True  # the Quix Streams peer (its virtualenv: `make quix-peer`)
    peer_rows: int = 20_000  # of the detector's backlog, for the peer's throughput and its scores' check
    transport_rows: int = 300_000  # for Kafka's tools: enough for the JVM's warm-up not to count


@dataclass(frozen=True)
class AtRate:
    """The latency stage at one offered rate: latency percentiles (ms), the rate the load generator
    reached, the CPU of the measured window and the detectors' batches in it (one Kafka transaction
    each: what the broker's cost follows at everyday rates)."""

    latency_ms: dict[str, float]
    latency_parts_ms: dict[str, dict[str, float]]
    achieved_tps: float
    cpu: CpuUse
    transactions: int
    batches: int


@dataclass(frozen=True)
class Backlog:
    """The detector stage's transactions: its topics, the frame, where its ids start in the run's."""

    stage: Settings
    frame: pd.DataFrame
    first: int


def stage_settings(settings: Settings, name: str) -> Settings:
    """A bench stage's settings: topics and groups of its own (created), logs under ``bench/``; its
    detectors serve the model file, not the registry: a bench measures the pipeline, and needs no
    MLflow server."""
    stage = settings.scoped(name).model_copy(
        update={"log_dir": settings.log_dir / "bench", "mlflow_tracking_uri": ""}
    )
    ensure_topics(stage)
    return stage


def rate_key(rate: float) -> str:
    """A rate as a JSON key: ``1000.0`` -> ``"1000"``."""
    return f"{rate:g}"


def run(settings: Settings, plan: BenchPlan, say: Say) -> dict[str, Any]:
    """One full benchmark run; numbers only in the result (rates in rows/s, latencies in ms, CPU in
    cores and CPU milliseconds per transaction; figures at a rate keyed by ``rate_key``), with the
    limits, the peer and every ratio (``ratios``)."""
    if plan.peer:
        interpreter(settings)  # before anything is measured
    stack = LocalStack.from_settings(settings)
    stack.up()
    bench = _Bench(settings, plan, say, stack)
    try:
        detector_tps, sink_tps = bench.stages_alone()
        limits = bench.limits()
        peer = bench.peer_throughput() if plan.peer else {}
        e2e_tps = bench.end_to_end()
        at_rate, idle = bench.at_rates()
        if plan.peer:
            peer.update(bench.peer_latency(peer_rate(plan.latency_rates)))
        baseline_tps = bench.baseline()
    finally:
        bench.clean_up()
    result = {
        "rows": plan.rows,
        "detectors": plan.detectors,
        "sinks": plan.sinks,
        "brokers": settings.kafka_brokers,
        "replication_factor": settings.topic_replication_factor,
        "rules": sum(rule.enabled for rule in plan.rules),
        "e2e_tps": round(e2e_tps, 1),
        "detector_tps": round(detector_tps, 1),
        "sink_tps": round(sink_tps, 1),
        "baseline_tps": round(baseline_tps, 1),
        **_rate_figures(at_rate),
        "idle_cpu_cores": idle.cores(),
        "limits": limits,
        **peer,
    }
    ratio = round(result["e2e_tps"] / result["baseline_tps"], 1)  # of the figures as reported
    return {**result, "ratio_vs_baseline": ratio, "ratios": ratios(result)}


def peer_rate(rates: tuple[float, ...]) -> float:
    """The rate the peer's latency is measured at: the highest up to 1,000 tx/s (everyday load), else
    the lowest."""
    everyday = [rate for rate in rates if rate <= 1000.0]
    return max(everyday) if everyday else min(rates)


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """Every throughput as a ratio to the limits, the baseline and the peer of the same run, and the
    peer's latency and CPU per transaction as ratios to fraudstream's at the same rate (> 1: the peer's
    is higher)."""
    limits = result["limits"]
    transport = min(limits["transport"]["producer_tps"], limits["transport"]["consumer_tps"])
    figures = {
        "e2e_vs_baseline": result["e2e_tps"] / result["baseline_tps"],
        "detector_vs_baseline": result["detector_tps"] / result["baseline_tps"],
        "detector_vs_transport": result["detector_tps"] / transport,
        "sink_vs_transport": result["sink_tps"] / transport,
        "e2e_vs_transport": result["e2e_tps"] / transport,
        "pass_through_vs_transport": limits["pass_through_tps"] / transport,
        "detector_vs_pass_through": result["detector_tps"] / limits["pass_through_tps"],
        "detector_vs_predict": result["detector_tps"] / limits["predict_tps"],
    }
    if "peer_quixstreams_tps" in result:
        ((rate, peer_latency),) = result["peer_quixstreams_latency_ms"].items()
        figures.update(
            {
                "e2e_vs_peer": result["e2e_tps"] / result["peer_quixstreams_tps"],
                "detector_vs_peer": result["detector_tps"] / result["peer_quixstreams_tps"],
                "peer_p99_vs_p99": peer_latency["p99"] / result["latency_ms"][rate]["p99"],
                "peer_cpu_ms_per_tx_vs_cpu_ms_per_tx": result["peer_quixstreams_cpu_ms_per_tx"][rate]
                / result["cpu_ms_per_tx_at_rate"][rate],
            }
        )
    return {name: float(f"{value:.4g}") for name, value in figures.items()}  # 4 significant digits


def _rate_figures(at_rate: dict[str, AtRate]) -> dict[str, dict[str, Any]]:
    return {
        "latency_ms": {key: figures.latency_ms for key, figures in at_rate.items()},
        "latency_parts_ms": {key: figures.latency_parts_ms for key, figures in at_rate.items()},
        "achieved_tps_at_rate": {key: round(figures.achieved_tps, 1) for key, figures in at_rate.items()},
        "cpu_cores_at_rate": {key: figures.cpu.cores() for key, figures in at_rate.items()},
        "cpu_ms_per_tx_at_rate": {
            key: figures.cpu.ms_per_message(figures.transactions) for key, figures in at_rate.items()
        },
        "detector_transactions_per_s_at_rate": {
            key: round(figures.batches / figures.cpu.wall, 1) for key, figures in at_rate.items()
        },
        "detector_cpu_ms_per_batch_at_rate": {
            key: round(figures.cpu.seconds["detector"] * 1000 / max(figures.batches, 1), 2)
            for key, figures in at_rate.items()
        },
    }


def _detector_batches(running: list[ServiceProcess]) -> int:
    """Batches the running detectors have committed so far (their ``fraudstream_batch_size`` count)."""
    detectors = [service for service in running if service.name == "detector"]
    return int(sum(service.metric("fraudstream_batch_size_count") for service in detectors))


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over ``runs`` (nested figures too), with the runs themselves under
    ``runs``; the ratios are those of the medians."""
    result = _median_of(runs)
    result["ratio_vs_baseline"] = round(result["e2e_tps"] / result["baseline_tps"], 1)
    result["ratios"] = ratios(result)
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
        self.work_dir = settings.log_dir / "bench" / f"bench-{self.run_id}"
        self.backlog: Backlog | None = None

    def stage(self, name: str) -> Settings:
        stage = stage_settings(self.settings, f"bench-{self.run_id}-{name}")
        self.stages.append(stage)
        for rule in self.plan.rules:
            publish(stage, rule)
        return stage

    def produce(self, stage: Settings, frame: pd.DataFrame, rate: float | None = None) -> float:
        report = TransactionProducer(stage).send(frame, rate=rate)
        self.transaction_ids.extend(report.transaction_ids)
        return report.seconds

    def stages_alone(self) -> tuple[float, float]:
        """The detector then the sink, each on a backlog; the transactions stay for the limits and the
        peer (``self.backlog``)."""
        stage = self.stage("alone")
        frame = transactions(self.plan.rows, seed=1)
        inputs = _Gate(stage, stage.topic_transactions, self.plan.timeout_s)
        scores = _Gate(stage, stage.topic_scoring, self.plan.timeout_s)
        self.backlog = Backlog(stage, frame, len(self.transaction_ids))
        with self.services(stage, "detector"):
            self.say(f"detector alone: {self.plan.rows:,} transactions into the settled group")
            self.produce(stage, frame)
            backlog_end = inputs.held_end()
            released = inputs.open()
            detector_tps = self.drain(
                stage.detector_group, stage.topic_transactions, "detector", target=backlog_end, since=released
            )
        with self.services(stage, "sink"):
            released = scores.open()
            sink_tps = self.drain(stage.sink_group, stage.topic_scoring, "sink", since=released)
        return detector_tps, sink_tps * self.plan.rows / self.end_offset(stage.topic_scoring)

    def limits(self) -> dict[str, Any]:
        """The transport (Kafka's tools), pass-through (exactly-once alone) and predict limits."""
        rows, backlog = self.plan.rows, self.backlog
        self.say(f"transport limit: Kafka's performance tools, {self.plan.transport_rows:,} messages")
        topic, records = self.stage("transport").topic_transactions, self.plan.transport_rows
        transport = limits.transport(self.stack.kafka, topic, backlog.frame, records)
        self.say(f"pass-through limit: consume, produce, commit transactionally, {rows:,} messages")
        target = self.stage("pass").topic_scoring
        source = backlog.stage.topic_transactions
        pass_through = limits.pass_through(self.settings, source, target, rows, self.plan.timeout_s)
        self.say("predict limit: CatBoost on a prepared feature matrix")
        return {
            "transport": transport,
            "pass_through_tps": round(pass_through, 1),
            "predict_tps": round(limits.predict(self.settings, backlog.frame), 1),
        }

    def peer_throughput(self) -> dict[str, Any]:
        """The Quix Streams peer over the detector's backlog, and the largest difference of its scores
        from offline scoring (``ml.offline``) of the same transactions."""
        backlog, stage, rows = self.backlog, self.stage("peer"), min(self.plan.peer_rows, self.plan.rows)
        source, group = backlog.stage.topic_transactions, stage.detector_group
        self.say(f"Quix Streams peer: the first {rows:,} transactions of the detector's backlog")
        with QuixPeer(self.settings, source, stage.topic_scoring, group, self.work_dir / "peer") as peer:
            tps = self.drain(group, source, "Quix Streams peer", peer.check_alive, target=rows)
        with Arrivals(self.settings, stage.topic_scoring, f"bench-{self.run_id}-peer-scores") as arrivals:
            arrivals.wait_for(rows, 60)
        model = FraudModel.load(self.settings.model_path)
        offline = score_frame(backlog.frame, model, self.settings.threshold)["score"].to_numpy()
        ids = self.transaction_ids[backlog.first : backlog.first + len(backlog.frame)]
        seen = arrivals.seen
        differences = [abs(seen[t][1] - s) for t, s in zip(ids, offline, strict=True) if t in seen]
        return {
            "peer_quixstreams_tps": round(tps, 1),
            "peer_quixstreams_max_score_diff": float(max(differences)),
        }

    def peer_latency(self, rate: float) -> dict[str, Any]:
        """The peer at a fixed rate, as the detector's latency stage: visibility latency, and the CPU
        of the broker and the peer over the measured window."""
        stage, plan, key = self.stage(f"peer-rate-{rate_key(rate)}"), self.plan, rate_key(rate)
        warm_up = transactions(int(rate * plan.warm_up_seconds), seed=4)
        measured = transactions(int(rate * plan.latency_seconds), seed=3)
        group = stage.detector_group
        work_dir = self.work_dir / f"peer-{key}"
        with (
            QuixPeer(self.settings, stage.topic_transactions, stage.topic_scoring, group, work_dir) as peer,
            Arrivals(self.settings, stage.topic_scoring, f"bench-{self.run_id}-peer-arrivals") as arrivals,
        ):
            self.say(f"Quix Streams peer: {rate:,.0f} tx/s, {plan.warm_up_seconds:.0f} s of warm-up")
            self.produce(stage, warm_up, rate=rate)
            arrivals.wait_for(len(warm_up), plan.timeout_s, peer)
            self.say(
                f"Quix Streams peer: latency and CPU at {rate:,.0f} tx/s for {plan.latency_seconds:.0f} s"
            )
            tracked = [Tracked("broker", self.stack.kafka.pids()), Tracked("peer", (peer.process.pid,))]
            window = CpuWindow(tracked).start()
            self.produce(stage, measured, rate=rate)
            arrivals.wait_for(len(warm_up) + len(measured), plan.timeout_s, peer)
            cpu = window.stop()
        produced = produced_at(self.settings, stage.topic_transactions, f"bench-{self.run_id}-peer-inputs")
        first = len(self.transaction_ids) - len(measured)
        visible = {t: arrivals.seen[t][0] for t in self.transaction_ids[first:]}
        return {
            "peer_quixstreams_latency_ms": {key: latencies(produced, visible)},
            "peer_quixstreams_cpu_cores": {key: cpu.cores()},
            "peer_quixstreams_cpu_ms_per_tx": {key: cpu.ms_per_message(len(measured))},
        }

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
            batches = _detector_batches(running)
            window = CpuWindow([*tracked, Tracked(LOAD_GENERATOR, (os.getpid(),), tree=False)]).start()
            sent_in = self.produce(stage, measured, rate=rate)
            self.wait_scored(stage, len(warm_up) + len(measured))
            cpu = window.stop()
            batches = _detector_batches(running) - batches
            if measure_idle_after:
                self.say(f"idle CPU: the running stack with no traffic for {plan.idle_seconds:.0f} s")
                idle = measure_idle(tracked, plan.idle_seconds)
        latency, parts = asyncio.run(_latencies(self.settings, self.transaction_ids[first:]))
        return AtRate(latency, parts, len(measured) / sent_in, cpu, len(measured), batches), idle

    def tracked(self, running: list[ServiceProcess]) -> list[Tracked]:
        """The stack's processes: the broker, PostgreSQL's postmaster and children, the services."""
        postgres = self.stack.postgres.pid()
        servers = {"broker": self.stack.kafka.pids(), "postgres": None if postgres is None else (postgres,)}
        missing = [name for name, pids in servers.items() if pids is None]
        if missing:
            raise RuntimeError(f"no running process found for {', '.join(missing)}")
        entries = [Tracked(name, pids) for name, pids in servers.items()]
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
            copies = {"detector": self.plan.detectors, "sink": self.plan.sinks}[name]
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

    def drain(
        self,
        group: str,
        topic: str,
        what: str,
        alive: Callable[[], None] = lambda: None,
        target: int | None = None,
        since: float | None = None,
    ) -> float:
        """Offsets per second of ``group`` to the end of ``topic`` (to ``target`` offsets in all, if
        given), from ``since`` (``time.perf_counter()`` when a gated backlog was released to a group
        with nothing committed yet) or else from its first committed batch seen; ``alive`` raises if
        the consumer died.

        Offsets of the scoring topic include transaction markers; the sink stage's rate is scaled back
        to rows by the caller.
        """
        target = self.end_offset(topic) if target is None else target
        first_time, first_count = since, 0
        deadline = time.monotonic() + self.plan.timeout_s
        while time.monotonic() < deadline:
            alive()
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
        """Delete the bench's topics (the stages', and those the peer made for its state: every name
        holds the run's id), its rows in fraud_scores and the peer's state."""
        existing = self.admin.list_topics(timeout=10).topics
        doomed = [topic for topic in existing if f"bench-{self.run_id}-" in topic]
        if doomed:
            for future in self.admin.delete_topics(doomed, operation_timeout=30).values():
                future.result()
        asyncio.run(_delete_rows(self.settings, self.transaction_ids))
        for client in [self.reader, *self.members.values()]:
            client.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)


class _Gate:
    """Holds back what is written to ``topic`` from its read_committed readers until ``open()``, so the
    backlog appears to a settled group all at once (else the first member to start drains it alone while
    the others join, or the members drain it while it is still being produced).

    An open transaction with one message in each partition keeps every partition's last stable offset
    before the backlog; ``open()`` aborts it, and its messages are never delivered.
    """

    def __init__(self, settings: Settings, topic: str, timeout_s: float) -> None:
        self.settings, self.topic = settings, topic
        self.offsets: dict[int, int] = {}
        config = {"transactional.id": f"{topic}-gate", "transaction.timeout.ms": int(timeout_s * 1000)}
        self._producer = Producer(kafka.producer_config(settings, **config))
        self._producer.init_transactions(30)
        self._producer.begin_transaction()
        for partition in range(settings.topic_partitions):
            self._producer.produce(topic, b"", partition=partition, on_delivery=self._delivered)
        self._producer.flush(30)

    def open(self) -> float:
        """Abort the transaction, and return once every partition's last stable offset is past it: the
        ``time.perf_counter()`` at which the abort was done (the backlog visible from then on)."""
        self._producer.abort_transaction(30)
        released = time.perf_counter()
        with kafka.consumer(self.settings, f"{self.topic}-gate") as reader:
            wait_until(lambda: self._released(reader), 30, f"the score messages of {self.topic}")
        return released

    def held_end(self) -> int:
        """The offsets written to the topic so far, summed over its partitions, those held back included
        (a read_committed reader's end offsets stop at the gate; its abort marker comes after)."""
        with kafka.consumer(
            self.settings, f"{self.topic}-gate", **{"isolation.level": "read_uncommitted"}
        ) as reader:
            return sum(kafka.end_offsets(reader, self.topic, 10).values())

    def _released(self, reader: Consumer) -> bool:
        ends = kafka.end_offsets(reader, self.topic, 10)  # a read_committed consumer's: last stable offsets
        return all(ends[partition] > offset for partition, offset in self.offsets.items())

    def _delivered(self, error: object, message: Message) -> None:
        if error is None:
            self.offsets[message.partition()] = message.offset()


def _settled(services: list[ServiceProcess], partitions: int) -> bool:
    """Every partition held by exactly one member, and every member busy if there are enough partitions:
    measuring before the group settles would time its rebalances."""
    held = [len(service.health().get("assigned_partitions", [])) for service in services]
    return sum(held) == partitions and (len(services) > partitions or all(held))


# A row's latency and where it goes, each from the times every row carries: the input record's Kafka
# timestamp (``produced_at``), the score record's (``scored_at``: stamped as the detector produces it,
# inside its transaction) and PostgreSQL's insert time (``stored_at``). All three are clocks of the
# bench's one host.
PRODUCE_TO_ROW = "stored_at - produced_at"
LATENCY_PARTS = {
    "input_to_score": "scored_at - produced_at",  # the producer's linger, the detector's batching, scoring
    "score_to_row": "stored_at - scored_at",  # the transaction's commit, the sink's read and insert
}
PERCENTILES = {"p50": 0.5, "p95": 0.95, "p99": 0.99}


def _milliseconds(interval: str) -> str:
    return f"extract(epoch FROM {interval}) * 1000"


def _percentiles_sql(name: str, interval: str) -> str:
    """Columns ``<name>_p50`` ... of ``interval``'s percentiles in ms."""
    return ", ".join(
        f"percentile_cont({fraction}) WITHIN GROUP (ORDER BY {_milliseconds(interval)}) AS {name}_{key}"
        for key, fraction in PERCENTILES.items()
    )


async def _latencies(
    settings: Settings, transaction_ids: list[str]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """The rows' produce-to-committed latency percentiles and maximum (ms), and the percentiles of each
    of its parts (``LATENCY_PARTS``)."""
    intervals = {"total": PRODUCE_TO_ROW, **LATENCY_PARTS}
    columns = ", ".join(_percentiles_sql(name, interval) for name, interval in intervals.items())
    connection = await asyncpg.connect(settings.pg_dsn)
    try:
        row = await connection.fetchrow(
            f"""
            SELECT {columns}, max({_milliseconds(PRODUCE_TO_ROW)}) AS total_max
            FROM fraud_scores WHERE transaction_id = ANY($1::uuid[])
            """,
            transaction_ids,
        )
    finally:
        await connection.close()

    def figures(name: str, keys: list[str]) -> dict[str, float]:
        return {key: round(float(row[f"{name}_{key}"]), 1) for key in keys}

    return figures("total", [*PERCENTILES, "max"]), {
        part: figures(part, list(PERCENTILES)) for part in LATENCY_PARTS
    }


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
