"""Training: artifacts, a time-based split, and reports that match the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudstream.ml.model import FraudModel
from fraudstream.ml.training import train_model
from tests.unit.transactions import synthetic

ARTIFACTS = {"model.cbm", "metadata.json", "report.json", "report.md", "pr_curve.png"}


def test_training_writes_artifacts_with_a_time_split(tmp_path: Path) -> None:
    data = tmp_path / "train.csv.gz"
    synthetic(customers=40, days=60).sample(frac=1.0, random_state=0).to_csv(data, index=False)
    out = tmp_path / "model"
    report = train_model(data, out, validation_fraction=0.25, progress=False, iterations=60)
    assert {path.name for path in out.iterdir()} >= ARTIFACTS
    metadata = json.loads((out / "metadata.json").read_text())
    split = metadata["data"]["split_time"]
    assert metadata["data"]["train"]["time_max"] < split <= metadata["data"]["validation"]["time_min"]
    assert metadata["threshold"] == report["validation"]["threshold"] and metadata["cat_features"] == []
    assert 0 < metadata["threshold"] < 1
    assert (
        metadata["alert_budget"] == report["alert_budget"] and report["alert_budget"]["alerts_per_day"] == 100
    )
    assert (
        metadata["metrics"]
        == report["validation"]
        == json.loads((out / "report.json").read_text())["validation"]
    )
    model = FraudModel.load(out)
    assert model.version == metadata["version"] == report["model"]
    # Bursts of large night purchases are easy to see: a broken pipeline would not find them.
    assert report["validation"]["pr_auc"] > 0.8
    assert "roc_auc" in (out / "report.md").read_text()
    assert "compared_model" not in report and "compared_validation" not in report


def test_the_report_compares_with_the_model_given(tmp_path: Path, seed_model: Path) -> None:
    data = tmp_path / "train.csv"
    synthetic(customers=20, days=30).to_csv(data, index=False)

    report = train_model(data, tmp_path / "model", progress=False, iterations=20, compare_with=seed_model)

    seed = FraudModel.load(seed_model)
    assert report["compared_model"] == seed.version
    compared = report["compared_validation"]
    assert compared["rows"] == report["validation"]["rows"] and compared["threshold"] == seed.threshold
    assert compared != report["validation"]
    assert f"| {seed.version} |" in (tmp_path / "model" / "report.md").read_text()


def test_training_refuses_a_bad_validation_fraction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="validation_fraction"):
        train_model(tmp_path / "missing.csv", tmp_path / "out", validation_fraction=1.0)
