"""Running the Quix Streams peer (``quix_app.py``) for the bench, and watching what it makes visible.

The peer runs with the interpreter of its own virtualenv (``Settings.quix_venv``, built by
``make quix-peer``). Its feature definitions come from ``ml.features`` and ``contracts.schema`` in a
spec file (``spec``), its model is the one the detector serves (``Settings.model_path``) at the same
threshold. ``Arrivals`` records when each score message becomes visible to a ``read_committed``
reader: the peer's latency is from the input's Kafka timestamp to that moment (its output committed),
as the detector's is to its row committed in PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from types import TracebackType

import numpy as np
import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from fraudstream.config import Settings
from fraudstream.contracts import schema
from fraudstream.ml import features
from fraudstream.ml.model import MODEL_FILE, FraudModel, resolve_threshold
from fraudstream.pipeline import kafka

APP = Path(__file__).with_name("quix_app.py")
COMMIT_INTERVAL_S = 0.1  # Kafka Streams' exactly-once default; Quix's own (5 s) is a 5 s latency floor


class PeerUnavailable(RuntimeError):
    """The peer's virtualenv is missing."""


def spec(model: FraudModel) -> dict:
    """What the peer's features are: ``ml.features``' definitions and the model's feature order."""
    return {
        "categories": list(schema.CATEGORIES),
        "windows": dict(features.WINDOWS),
        "night_hours": list(features.NIGHT_HOURS),
        "keep_minutes": max(features.WINDOWS.values()),
        "features": model.feature_names,
    }


def interpreter(settings: Settings) -> Path:
    """The peer's Python; raises ``PeerUnavailable`` when its virtualenv is not built."""
    python = settings.quix_venv / "bin" / "python"
    if not python.exists():
        raise PeerUnavailable(f"no Quix Streams virtualenv at {settings.quix_venv}: run `make quix-peer`")
    return python


class QuixPeer:
    """The peer as a child process consuming ``source`` in consumer group ``group``, producing ``target``."""

    def __init__(self, settings: Settings, source: str, target: str, group: str, work_dir: Path) -> None:
        self.python = interpreter(settings)
        self.work_dir = work_dir
        model_path = Path(settings.model_path)
        model = FraudModel.load(model_path)
        self.config = {
            "broker": settings.kafka_bootstrap_servers,
            "group": group,
            "input": source,
            "output": target,
            "state_dir": str(work_dir / "state"),
            "commit_interval_s": COMMIT_INTERVAL_S,
            "model_file": str(model_path / MODEL_FILE if model_path.is_dir() else model_path),
            "threshold": resolve_threshold(settings.threshold, model.metadata).value,
            "spec": spec(model),
        }
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> QuixPeer:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "config.json"
        config.write_text(json.dumps(self.config))
        with (self.work_dir / "peer.out").open("ab") as out:
            self.process = subprocess.Popen(
                [str(self.python), str(APP), str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            output = (self.work_dir / "peer.out").read_text()[-2000:]
            raise RuntimeError(f"the Quix Streams peer exited with {self.process.returncode}: {output}")


class Arrivals:
    """A ``read_committed`` reader of ``topic`` from its start, on a thread: the wall-clock time (ms)
    at which each score message's transaction id became visible, and its score."""

    def __init__(self, settings: Settings, topic: str, group: str) -> None:
        self.seen: dict[str, tuple[float, float]] = {}  # transaction id -> (visible at, score)
        self._consumer = Consumer(
            kafka.consumer_config(settings, group, **{"isolation.level": "read_committed"})
        )
        self._consumer.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING) for p in kafka.partitions(self._consumer, topic, 10)]
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="arrivals", daemon=True)

    def __enter__(self) -> Arrivals:
        self._thread.start()
        return self

    def __exit__(self, kind: type | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            messages = self._consumer.consume(10_000, 0.05)
            now = time.time() * 1000
            for message in messages:
                if message.error() is None:
                    value = orjson.loads(message.value())
                    self.seen[value["transaction_id"]] = (now, value["score"])

    def wait_for(self, count: int, timeout_s: float, peer: QuixPeer | None = None) -> None:
        """Until ``count`` scores are visible; raises if the running ``peer``, if any, exits."""
        deadline = time.monotonic() + timeout_s
        while len(self.seen) < count:
            if peer is not None:
                peer.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the peer's output: {len(self.seen)} of {count} in {timeout_s:.0f} s")
            time.sleep(0.05)


def produced_at(settings: Settings, topic: str, group: str) -> dict[str, float]:
    """The Kafka timestamp (ms) of every transaction of ``topic``, by transaction id."""
    messages = kafka.read_topic(settings, topic, group, timeout=60)
    return {orjson.loads(message.value())["transaction_id"]: message.timestamp()[1] for message in messages}


def latencies(produced: dict[str, float], visible: dict[str, float]) -> dict[str, float]:
    """Percentiles (ms) from each transaction's Kafka timestamp to its score's visibility."""
    values = np.array([visible[key] - produced[key] for key in visible if key in produced])
    return {
        "p50": round(float(np.percentile(values, 50)), 1),
        "p95": round(float(np.percentile(values, 95)), 1),
        "p99": round(float(np.percentile(values, 99)), 1),
        "max": round(float(values.max()), 1),
    }
