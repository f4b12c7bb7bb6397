"""Offline scoring: time order inside, input order outside, and the output file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudstream.contracts import schema
from fraudstream.ml.features import FeatureEngine
from fraudstream.ml.model import FraudModel
from fraudstream.ml.offline import score_file, score_frame
from tests.unit.transactions import synthetic


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic(customers=10, days=15, seed=3)


def test_scores_follow_time_order_but_come_back_in_input_order(
    small_model: Path, frame: pd.DataFrame
) -> None:
    model = FraudModel.load(small_model)
    in_order = score_frame(frame, model, 0.5)
    expected = model.predict(FeatureEngine().transform(frame))
    assert np.array_equal(in_order["score"].to_numpy(), expected)
    shuffled = frame.sample(frac=1.0, random_state=0)
    out = score_frame(shuffled, model, 0.5)
    assert list(out.index) == list(shuffled.index)
    pd.testing.assert_frame_equal(out.loc[frame.index], in_order, check_exact=True)
    assert (out["fraud_flag"] == (out["score"] > 0.5).astype(int)).all()


def test_score_frame_continues_a_given_engine(small_model: Path, frame: pd.DataFrame) -> None:
    model = FraudModel.load(small_model)
    half = len(frame) // 2
    engine = FeatureEngine()
    first = score_frame(frame.iloc[:half], model, 0.5, engine)
    second = score_frame(frame.iloc[half:], model, 0.5, engine)
    pd.testing.assert_frame_equal(
        pd.concat([first, second]), score_frame(frame, model, 0.5), check_exact=True
    )


def test_score_file_with_ids_and_labels(small_model: Path, frame: pd.DataFrame, tmp_path: Path) -> None:
    source = frame.assign(transaction_id=[f"tx-{i}" for i in range(len(frame))])
    source.to_csv(tmp_path / "in.csv", index=False)
    metrics = score_file(tmp_path / "in.csv", tmp_path / "out.csv", small_model, 0.5)
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["transaction_id", "score", "fraud_flag"]
    assert out["transaction_id"].tolist() == source["transaction_id"].tolist()
    assert metrics["rows"] == len(frame) and metrics["positives"] == int(frame[schema.TARGET_COLUMN].sum())
    assert {"roc_auc", "pr_auc", "precision", "recall", "f1", "confusion"} <= set(metrics)
    assert metrics["confusion"]["tp"] + metrics["confusion"]["fn"] == metrics["positives"]


def test_score_file_without_labels_counts(small_model: Path, frame: pd.DataFrame, tmp_path: Path) -> None:
    frame.drop(columns=schema.TARGET_COLUMN).to_csv(tmp_path / "in.csv", index=False)
    metrics = score_file(tmp_path / "in.csv", tmp_path / "out.csv", small_model, 0.99)
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out.columns) == ["score", "fraud_flag"]
    assert metrics == {"rows": len(frame), "flagged": int(out["fraud_flag"].sum()), "threshold": 0.99}
