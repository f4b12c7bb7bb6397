"""No label lost while the sink process (and its labels consumer) is killed -9 again and again."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from fraudstream.config import Settings
from fraudstream.contracts.messages import LabelMessage, new_label
from fraudstream.infra.topics import ensure_topics
from fraudstream.ops.supervisor import ServiceProcess
from fraudstream.pipeline.labels import publish_labels
from tests.helpers import fetch, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.fault]

CHUNKS, CHUNK = 40, 250  # 10,000 labels over about 8 seconds
KILLS = 3


def labels(count: int) -> list[LabelMessage]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        new_label(uuid.uuid4(), n % 2, "chargeback", "fault-test", start + timedelta(seconds=n))
        for n in range(count)
    ]


def written(settings: Settings, label_ids: list[uuid.UUID]) -> int:
    rows = fetch(
        settings, "SELECT count(*) AS n FROM fraud_labels WHERE label_id = ANY($1::uuid[])", label_ids
    )
    return rows[0]["n"]


def test_labels_survive_the_sink_killed_three_times(stack_settings):
    scoped = stack_settings.scoped(f"label-fault-{uuid.uuid4().hex[:6]}")
    ensure_topics(scoped)
    sent = labels(CHUNKS * CHUNK)
    sink = ServiceProcess("sink", scoped)
    sink.start()
    sink.wait_ready()

    def send() -> None:
        for chunk in range(CHUNKS):
            publish_labels(scoped, sent[chunk * CHUNK : (chunk + 1) * CHUNK])
            time.sleep(0.2)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        for _ in range(KILLS):
            time.sleep(2)
            sink.kill()
            sink.start()
        sender.join()
        label_ids = [label.label_id for label in sent]
        wait_for(lambda: written(scoped, label_ids) == len(sent), 120, f"{len(sent)} labels", sink)
        assert sink.process.poll() is None
    finally:
        sender.join()
        sink.stop()
