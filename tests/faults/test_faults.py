"""Nothing lost, nothing doubled: the pipeline under kill -9, broker and database restarts, bad input.

Each test streams transactions through its own topics while a fault strikes, then checks that
fraud_scores holds exactly one row per transaction and that the committed scoring topic
(read_committed) holds exactly one score message per transaction.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable

import pytest

from fraudstream.config import Settings
from fraudstream.infra.stack import LocalStack
from fraudstream.infra.topics import ensure_topics
from fraudstream.ops.supervisor import ServiceProcess
from tests.helpers import assert_exactly_once, stream_while

pytestmark = [pytest.mark.integration, pytest.mark.fault]

ROWS = 50_000
RATE = 5_000  # tx/s: the stream lasts ten seconds, long enough for five faults to strike it
FAULTS = 5


@pytest.fixture
def scoped(stack_settings: Settings, request: pytest.FixtureRequest) -> Settings:
    settings = stack_settings.scoped(f"fault-{request.node.originalname}-{uuid.uuid4().hex[:6]}")
    ensure_topics(settings)
    return settings


def kill_and_restart(service: ServiceProcess) -> Callable[[], None]:
    def fault() -> None:
        rng = random.Random(7)
        for _ in range(FAULTS):
            time.sleep(rng.uniform(0.5, 2.0))
            service.kill()
            service.start()

    return fault


def test_detector_killed_five_times(scoped, pipeline):
    ids = stream_while(scoped, kill_and_restart(pipeline["detector"]), 11, ROWS, RATE)
    assert_exactly_once(scoped, ids, *pipeline.values())


def test_sink_killed_five_times(scoped, pipeline):
    ids = stream_while(scoped, kill_and_restart(pipeline["sink"]), 12, ROWS, RATE)
    assert_exactly_once(scoped, ids, *pipeline.values())


def outage(stop: Callable[[], None], start: Callable[[], None]) -> Callable[[], None]:
    def fault() -> None:
        time.sleep(2)
        stop()
        time.sleep(3)
        start()

    return fault


@pytest.mark.parametrize("server", ["kafka", "postgres"])
def test_server_restarted_under_the_running_services(scoped, pipeline, stack: LocalStack, server: str):
    """The broker is stopped, PostgreSQL crashes (immediate shutdown); the services ride it out."""
    fault = {
        "kafka": outage(stack.kafka.stop, stack.kafka.start),
        "postgres": outage(stack.postgres.kill, stack.postgres.start),
    }[server]
    ids = stream_while(scoped, fault, 13, ROWS, RATE)
    assert_exactly_once(scoped, ids, *pipeline.values())
    assert all(service.process.poll() is None for service in pipeline.values()), "a service died"
