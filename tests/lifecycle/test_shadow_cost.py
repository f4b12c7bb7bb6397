"""What a shadow challenger costs the detector, measured in-process on its scoring step (decode,
features, predict, reasons, encode) for a full batch (5,000) and a light-traffic batch (20).

Prints the figures (``pytest -s -m slow tests/lifecycle/test_shadow_cost.py``); timings are not asserted
(the machine is shared and noisy): CPU time of this process, the best of many alternated runs.
"""

from __future__ import annotations

import time
from types import SimpleNamespace

import orjson
import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Message

from fraudstream.config import DEFAULT_MODEL_PATH, Settings
from fraudstream.contracts.batch_decode import decode_batch
from fraudstream.contracts.schema import customer_ids
from fraudstream.ml.model import FraudModel
from fraudstream.pipeline.detector import Detector
from fraudstream.pipeline.detector.rules import RuleStage
from fraudstream.pipeline.detector.serving import Models, ModelServing
from fraudstream.rules.ruleset import ruleset_of
from tests.message_corpus import good_values

pytestmark = pytest.mark.slow


def records(values: list[bytes]) -> list[Message]:
    return [
        Message(topic="t", partition=0, offset=n, value=value, key=b"k", timestamp=(TIMESTAMP_CREATE_TIME, 1))
        for n, value in enumerate(values)
    ]


def test_shadow_scoring_cost():
    settings = Settings(mlflow_tracking_uri="")
    champion = FraudModel.load(DEFAULT_MODEL_PATH)
    challenger = FraudModel.load(DEFAULT_MODEL_PATH)
    challenger.version = "challenger"
    serving = ModelServing.fixed(settings, champion)
    detector = Detector(settings, serving, "shadow-cost")
    detector._rules = RuleStage(settings, SimpleNamespace(rules=ruleset_of([])))  # no rule: the model decides
    detector.state.add(0, {})  # the records' partition, assigned with no customer yet
    for rows, repeats in ((5000, 30), (20, 300)):
        values = good_values(rows)
        messages = records(values)
        best = {False: float("inf"), True: float("inf")}
        for _ in range(repeats):
            for shadow in (False, True):
                serving._models = Models(champion, challenger if shadow else None)
                started = time.process_time()
                batch = decode_batch(values)
                scored = detector._score(messages, batch, customer_ids(batch.columns))
                best[shadow] = min(best[shadow], time.process_time() - started)
        decoded = [orjson.loads(value) for value in scored.values]
        assert all(m["shadow_score"] == m["score"] and m["shadow_version"] == "challenger" for m in decoded)
        print(
            f"\n{rows} rows: {rows / best[False]:,.0f} rows/s without a challenger, "
            f"{rows / best[True]:,.0f} with one: throughput -{(1 - best[False] / best[True]):.1%}"
        )
