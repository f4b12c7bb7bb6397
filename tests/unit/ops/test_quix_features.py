"""The Quix Streams peer's plain-Python features are ``FeatureEngine``'s, one message at a time."""

from __future__ import annotations

import numpy as np

from fraudstream.config import DEFAULT_MODEL_PATH
from fraudstream.contracts.schema import INPUT_COLUMNS, customer_ids
from fraudstream.ml.features import FeatureEngine
from fraudstream.ml.model import FraudModel
from fraudstream.ops.loadgen import transactions
from fraudstream.ops.peers.quix import spec
from fraudstream.ops.peers.quix_features import Spec, features_then_update, new_state


def test_the_peer_computes_the_engines_features_message_by_message():
    model = FraudModel.load(DEFAULT_MODEL_PATH)
    peer_spec = Spec.of(spec(model))
    # 8 days of transactions (a minute every 5), 30 per customer: every window and the 7-day pruning at work
    frame = transactions(60_000, customer_count=2000, seed=5)
    expected = FeatureEngine().transform(frame)[model.feature_names].to_numpy(dtype=np.float64)
    states: dict[str, dict] = {}
    rows = []
    records = frame[list(INPUT_COLUMNS)].to_dict("records")
    for customer, record in zip(customer_ids(frame), records, strict=True):
        record["transaction_time"] = str(record["transaction_time"])
        state = states.setdefault(customer, new_state(peer_spec))
        rows.append(features_then_update(peer_spec, state, record))

    np.testing.assert_allclose(np.array(rows, dtype=np.float64), expected, rtol=1e-9, equal_nan=True)
