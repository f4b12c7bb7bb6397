"""One source of truth for the threshold: the model's own, unless a setting overrides it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudstream.config import Settings
from fraudstream.contracts import schema
from fraudstream.ml.model import DEFAULT_THRESHOLD, FraudModel, explain_floor, resolve_threshold
from fraudstream.ml.offline import score_file
from tests.helpers import model_with_threshold
from tests.unit.transactions import synthetic


def test_the_models_own_threshold_unless_a_setting_overrides_it() -> None:
    assert resolve_threshold(None, {"threshold": 0.3}).value == 0.3
    assert resolve_threshold(None, {"threshold": 0.3}).source == "model metadata"
    assert resolve_threshold(0.7, {"threshold": 0.3}).value == 0.7
    assert resolve_threshold(0.0, {"threshold": 0.3}).value == 0.0  # an override of 0 is an override
    assert resolve_threshold(None, {}).value == DEFAULT_THRESHOLD == 0.5


def test_a_threshold_outside_0_1_in_the_metadata_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        resolve_threshold(None, {"threshold": 1.5})


def test_the_detector_uses_03_when_its_models_metadata_says_so(small_model: Path, tmp_path: Path):
    model = FraudModel.load(model_with_threshold(small_model, tmp_path / "model", 0.3))

    settings = Settings()
    threshold = resolve_threshold(settings.threshold, model.metadata)

    assert model.threshold == 0.3
    assert threshold.value == 0.3
    assert explain_floor(settings.explain_min_score, threshold) == 0.3  # every flag carries its reasons


def test_the_detectors_setting_overrides_the_models_threshold(small_model: Path, tmp_path: Path):
    model = FraudModel.load(model_with_threshold(small_model, tmp_path / "model", 0.3))

    settings = Settings(threshold=0.7, explain_min_score=0.9)
    threshold = resolve_threshold(settings.threshold, model.metadata)

    assert (threshold.value, explain_floor(settings.explain_min_score, threshold)) == (0.7, 0.9)


def test_the_seeds_bare_cbm_gets_05(seed_model: Path):
    model = FraudModel.load(seed_model)

    assert model.metadata == {} and model.threshold == 0.5
    assert resolve_threshold(Settings().threshold, model.metadata).value == 0.5


def test_score_flags_by_the_models_threshold_and_the_option_overrides_it(small_model: Path, tmp_path: Path):
    frame = synthetic(customers=10, days=15, seed=3).drop(columns=schema.TARGET_COLUMN)
    frame.to_csv(tmp_path / "in.csv", index=False)
    score_file(tmp_path / "in.csv", tmp_path / "default.csv", small_model)
    scores = pd.read_csv(tmp_path / "default.csv")["score"].to_numpy()
    own = float(np.quantile(scores, 0.5))  # a threshold that flags half the rows, far below 0.5
    assert ((scores > own) & (scores <= 0.5)).any(), "no score between the two thresholds to tell them apart"
    model = model_with_threshold(small_model, tmp_path / "model", own)

    report = score_file(tmp_path / "in.csv", tmp_path / "own.csv", model)
    overridden = score_file(tmp_path / "in.csv", tmp_path / "override.csv", model, threshold=0.5)

    assert report["threshold"] == own and overridden["threshold"] == 0.5
    flags = pd.read_csv(tmp_path / "own.csv")["fraud_flag"].to_numpy()
    assert np.array_equal(flags, (scores > own).astype(int))
    assert np.array_equal(pd.read_csv(tmp_path / "override.csv")["fraud_flag"], (scores > 0.5).astype(int))
