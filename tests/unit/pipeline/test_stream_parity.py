"""The detector's scoring steps (``send``'s messages decoded into numpy columns a batch at a time, the
features, the model) score every transaction as offline scoring of the same rows as one DataFrame, to
the last bit, however the stream batches them."""

from __future__ import annotations

import numpy as np
import pytest

from fraudstream.config import DEFAULT_MODEL_PATH
from fraudstream.contracts.batch_decode import COLUMNAR_FROM, decode_batch
from fraudstream.contracts.schema import customer_ids
from fraudstream.ml.features import FeatureEngine
from fraudstream.ml.model import FraudModel
from fraudstream.ml.offline import score_frame
from fraudstream.ops.loadgen import transactions
from fraudstream.pipeline.producer import encoded


def random_batches(total: int, rng: np.random.Generator) -> list[int]:
    """Batch sizes adding up to ``total``: single messages, small batches and columnar ones."""
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(min(int(rng.choice([1, 2, 7, 30, COLUMNAR_FROM, 1200])), total - sum(sizes)))
    return sizes


def stream_scores(values: list[bytes], sizes: list[int], model: FraudModel) -> np.ndarray:
    engine, scores, start = FeatureEngine(), [], 0
    for size in sizes:
        batch = decode_batch(values[start : start + size])
        features = engine.features_and_update(batch.columns, customer_ids(batch.columns), batch.times)
        scores.append(model.predict(features))
        start += size
    assert start == len(values)
    return np.concatenate(scores)


@pytest.mark.parametrize("seed", range(3))
def test_any_batching_scores_as_offline_scoring_of_the_frame(seed):
    frame = transactions(4000, customer_count=150, seed=seed)
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(len(frame))]
    values = [value for _, value in encoded(frame, ids)]  # in time order, as the generator made them
    sizes = random_batches(len(values), np.random.default_rng(seed))
    model = FraudModel.load(DEFAULT_MODEL_PATH)

    offline = score_frame(frame, model)["score"].to_numpy()

    assert any(size >= COLUMNAR_FROM for size in sizes) and any(size < COLUMNAR_FROM for size in sizes)
    assert np.array_equal(stream_scores(values, sizes, model), offline)
