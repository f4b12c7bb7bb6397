"""`fraudstream status` polled while Kafka starts on an empty data directory, as a user of `make run` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from fraudstream.config import Settings
from fraudstream.infra.kafka import KafkaServer
from fraudstream.infra.process import free_port, wait_until
from fraudstream.infra.topics import ensure_topics

pytestmark = pytest.mark.integration

CACHE_DIR = Path(__file__).resolve().parents[2] / ".cache"
POLLERS = 2  # two at a time, so some poll lands in each moment of the broker's start


@dataclass(frozen=True)
class Answer:
    code: int
    kafka_healthy: bool | None
    stderr: str


class StatusPoller:
    """`fraudstream status --json` run again and again, 0.2 s apart, by a few threads."""

    def __init__(self, settings: Settings) -> None:
        self.env = {**os.environ, **settings.environment()}
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._poll) for _ in range(POLLERS)]

    def __enter__(self) -> StatusPoller:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _poll(self) -> None:
        while not self._stop.is_set():
            run = subprocess.run(
                [sys.executable, "-m", "fraudstream", "status", "--json"],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            healthy = json.loads(run.stdout)["kafka"]["healthy"] if run.returncode in (0, 1) else None
            self.answers.append(Answer(run.returncode, healthy, run.stderr[-2000:]))
            self._stop.wait(0.2)


def test_status_answers_unhealthy_while_kafka_starts_and_healthy_once_it_is_up(tmp_path):
    port = free_port(following=1)  # + the KRaft controller's
    server = KafkaServer(cache_dir=CACHE_DIR, data_dir=tmp_path / "kafka", port=port)
    settings = Settings(
        kafka_bootstrap_servers=server.bootstrap_servers,
        pg_port=free_port(),
        detector_metrics_port=free_port(),
        sink_metrics_port=free_port(),
    )
    server.ensure_jars()  # before polling, so the polls cover the broker's start, not Maven's download
    try:
        with StatusPoller(settings) as poller:
            wait_until(lambda: len(poller.answers) >= POLLERS, 60, "status to answer with Kafka down")
            server.start()
            ensure_topics(settings)
            wait_until(lambda: poller.answers[-1].kafka_healthy is True, 60, "status to see Kafka healthy")
    finally:
        server.stop()

    crashes = [answer for answer in poller.answers if answer.code not in (0, 1)]
    assert crashes == [], f"status crashed: exit {crashes[0].code}\n{crashes[0].stderr}"
    assert poller.answers[0].kafka_healthy is False
    assert len(poller.answers) > 2 * POLLERS
