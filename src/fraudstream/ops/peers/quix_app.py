"""The bench's Quix Streams peer: the detector as an idiomatic Quix Streams 3 application.

It runs with the interpreter of its own virtualenv (``make quix-peer``; quixstreams pins older
confluent-kafka and pydantic than the product's), as ``python quix_app.py CONFIG.json`` (see
``peers.quix``). Run by its path, it imports nothing of fraudstream's but its sibling, the
standard-library feature code (``quix_features``), so the product's packages stay out of the peer's
interpreter.

Per message: the JSON value, the customer's history from the application's state store (keyed by the
message key, the customer id), the features in plain Python, CatBoost on that one row (one thread: a
row gains nothing from more), a JSON score message to the output topic. Exactly-once: Quix's
``processing_guarantee="exactly-once"`` (Kafka transactions over the output, the state's changelog and
the offsets, committed every ``commit_interval`` seconds).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from catboost import CatBoostClassifier
from quix_features import Spec, features_then_update, new_state  # the sibling module, run by path
from quixstreams import Application, State

STATE_KEY = "history"


def build(config: dict) -> Application:
    spec = Spec.of(config["spec"])
    model = CatBoostClassifier()
    model.load_model(config["model_file"])
    threshold = config["threshold"]

    def score(value: dict, state: State) -> dict:
        history = state.get(STATE_KEY) or new_state(spec)
        row = features_then_update(spec, history, value["data"])
        state.set(STATE_KEY, history)
        probability = float(model.predict(row, prediction_type="Probability", thread_count=1)[1])
        return {
            "transaction_id": value["transaction_id"],
            "score": probability,
            "fraud_flag": int(probability > threshold),
        }

    app = Application(
        broker_address=config["broker"],
        consumer_group=config["group"],
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=config["commit_interval_s"],
        state_dir=config["state_dir"],
        loglevel="WARNING",
        consumer_extra_config={"fetch.wait.max.ms": 20},
    )
    source = app.topic(config["input"], key_deserializer="bytes", value_deserializer="json")
    target = app.topic(config["output"], key_serializer="bytes", value_serializer="json")
    app.dataframe(source).apply(score, stateful=True).to_topic(target)
    return app


if __name__ == "__main__":
    build(json.loads(Path(sys.argv[1]).read_text())).run()
