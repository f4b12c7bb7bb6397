"""The limits the bench's figures are compared with, measured on the same broker and data in the same run.

- transport: Kafka's own performance tools (``ProducerPerformance``, ``ConsumerPerformance`` of the
  kafka-tools jar the broker's pom resolves) over the bench's own messages (a payload file of them:
  the same sizes and compressibility) with the product's producer settings;
- pass-through: consume, produce each value unchanged and commit the offsets in one Kafka transaction
  per batch (the detector's batching and ``Transactions``), no features and no model: the cost of
  exactly-once alone;
- predict: the shipped model's CatBoost ``predict_proba`` alone, on a feature matrix prepared
  beforehand, in the detector's batch size.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
from confluent_kafka import Consumer, Message, Producer

from fraudstream.config import Settings
from fraudstream.contracts.schema import coerce
from fraudstream.infra.kafka import KafkaCluster
from fraudstream.ml.features import FeatureEngine
from fraudstream.ml.model import FraudModel
from fraudstream.pipeline import kafka
from fraudstream.pipeline.detector.transactions import Transactions
from fraudstream.pipeline.producer import encoded

PRODUCED = re.compile(r"(\d+) records sent, ([\d.]+) records/sec")
PREDICT_SECONDS = 1.0  # predict passes over the matrix until this much time has gone


class ToolError(RuntimeError):
    """A Kafka performance tool failed or printed no figure."""


def payload_file(frame: pd.DataFrame, directory: Path) -> tuple[Path, float]:
    """The frame's messages (values, one per line) for ``--payload-file``, and their mean size in bytes."""
    typed = coerce(frame)
    values = [value for _, value in encoded(typed, [str(uuid.uuid4()) for _ in range(len(typed))])]
    path = directory / "payloads.txt"
    path.write_bytes(b"\n".join(values))
    return path, float(np.mean([len(value) for value in values]))


def transport(server: KafkaCluster, topic: str, frame: pd.DataFrame, records: int) -> dict[str, float]:
    """Kafka's producer then consumer performance tools over ``records`` of the frame's messages."""
    with tempfile.TemporaryDirectory(prefix="fraudstream-transport-") as directory:
        payloads, size = payload_file(frame, Path(directory))
        produced = _run_tool(
            server, "org.apache.kafka.tools.ProducerPerformance",
            "--topic", topic, "--num-records", str(records), "--throughput", "-1",
            "--payload-file", str(payloads), "--payload-delimiter", "\n",
            "--producer-props", f"bootstrap.servers={server.bootstrap_servers}", "acks=all",
            "enable.idempotence=true", "linger.ms=5", "batch.size=1000000", "compression.type=lz4",
        )  # fmt: skip
        consumed = _run_tool(
            server, "org.apache.kafka.tools.ConsumerPerformance",
            "--bootstrap-server", server.bootstrap_servers, "--topic", topic,
            "--messages", str(records), "--timeout", "60000",
        )  # fmt: skip
    return {
        "message_bytes": round(size, 1),
        "producer_tps": round(_produced_rate(produced), 1),
        "consumer_tps": round(_consumed_rate(consumed), 1),
    }


def _run_tool(server: KafkaCluster, main_class: str, *args: str) -> str:
    java = shutil.which("java")
    if java is None:
        raise ToolError("java is not on PATH")
    command = [java, "-Xmx512m", "-cp", str(server.libs_dir.resolve() / "*"), main_class, *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise ToolError(f"{main_class.rsplit('.', 1)[-1]} failed: {result.stderr[-2000:]}")
    return result.stdout


def _produced_rate(output: str) -> float:
    """ProducerPerformance's final line: 'N records sent, R records/sec (...)'."""
    lines = [match for match in PRODUCED.finditer(output)]
    if not lines:
        raise ToolError(f"ProducerPerformance printed no rate: {output[-500:]}")
    return float(lines[-1].group(2))


def _consumed_rate(output: str) -> float:
    """ConsumerPerformance's CSV: a header and one line; the rate of its fetch time (without the group's
    join)."""
    rows = list(csv.reader(line for line in output.splitlines() if "," in line))
    if len(rows) < 2:
        raise ToolError(f"ConsumerPerformance printed no figures: {output[-500:]}")
    figures = dict(
        zip((name.strip() for name in rows[0]), (value.strip() for value in rows[-1]), strict=False)
    )
    return float(figures["fetch.nMsg.sec"])


def pass_through(settings: Settings, source: str, target: str, rows: int, timeout_s: float) -> float:
    """Messages per second of a transactional consume-produce-commit loop over ``rows`` messages of
    ``source`` (from its first message consumed to its last commit)."""
    name = f"{settings.detector_group}-pass-{uuid.uuid4().hex[:6]}"
    producer = Producer(kafka.producer_config(settings, **{"transactional.id": name, "retry.backoff.ms": 10}))
    committed: list[int] = []  # the size of each committed batch
    transactions = Transactions(
        producer,
        lambda producer, batch: _forward(producer, target, batch),
        lambda batch: committed.append(len(batch)),
    )
    consumer = Consumer(
        kafka.consumer_config(
            settings,
            name,
            **{"auto.offset.reset": "earliest", "isolation.level": "read_committed", "fetch.wait.max.ms": 20},
        )
    )
    consumer.subscribe([source])
    started, consumed = None, 0
    deadline = time.monotonic() + timeout_s
    try:
        while consumed < rows:
            if time.monotonic() > deadline:
                raise TimeoutError(f"pass-through: {consumed} of {rows} messages in {timeout_s:.0f} s")
            batch = [
                m for m in kafka.next_batch(consumer, settings.batch_max_messages, 1.0) if m.error() is None
            ]
            if not batch:
                continue
            started = started or time.perf_counter()
            consumed += len(batch)
            transactions.publish(batch, kafka.next_offsets(batch), consumer.consumer_group_metadata)
        transactions.settle()
        return sum(committed) / (time.perf_counter() - started)
    finally:
        consumer.close()


def _forward(producer: Producer, target: str, batch: list[Message]) -> None:
    for message in batch:
        producer.produce(target, message.value(), message.key())


def predict(settings: Settings, frame: pd.DataFrame) -> float:
    """Rows per second of the model's ``predict_proba`` on the frame's features, prepared beforehand as
    the float matrix the model reads, in batches of the detector's maximum size."""
    model = FraudModel.load(settings.model_path)
    features = FeatureEngine().features_and_update(coerce(frame))
    matrix = np.column_stack([np.asarray(features[name], dtype=np.float64) for name in model.feature_names])
    size = settings.batch_max_messages
    batches = [matrix[start : start + size] for start in range(0, len(matrix), size)]
    predicted, started = 0, time.perf_counter()
    while time.perf_counter() - started < PREDICT_SECONDS or predicted == 0:
        for batch in batches:
            model.booster.predict_proba(batch)
            predicted += len(batch)
    return predicted / (time.perf_counter() - started)
