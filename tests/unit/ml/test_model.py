"""FraudModel: exact seed scores, model directories, and SHAP explanations."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from catboost import Pool

from fraudstream.config import DEFAULT_MODEL_PATH
from fraudstream.contracts import schema
from fraudstream.ml.features import FEATURES, FeatureEngine
from fraudstream.ml.model import FraudModel
from tests.unit.transactions import NEW_SMALL, SEED_MODEL, seed_reference_frame, synthetic


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return FeatureEngine().transform(
        synthetic(customers=8, days=10, seed=5).drop(columns=schema.TARGET_COLUMN)
    )


def test_seed_model_gives_the_seed_scores_exactly() -> None:
    if not (SEED_MODEL.exists() and NEW_SMALL.exists()):
        pytest.skip("the seed model or new_small.csv is not available")
    model = FraudModel.load(SEED_MODEL)
    expected = model.booster.predict_proba(seed_reference_frame(NEW_SMALL))[:, 1]
    scores = model.predict(FeatureEngine().transform(schema.read_csv(NEW_SMALL)))
    assert scores.dtype == np.float64
    assert np.array_equal(scores, expected)
    assert model.feature_names == list(seed_reference_frame(NEW_SMALL).columns)


def test_model_directory_carries_metadata(small_model: Path, features: pd.DataFrame) -> None:
    model = FraudModel.load(small_model)
    metadata = json.loads((small_model / "metadata.json").read_text())
    assert model.version == metadata["version"]
    assert model.feature_names == metadata["features"]
    assert model.threshold == metadata["threshold"]
    scores = model.predict(features)
    assert scores.shape == (len(features),) and ((scores >= 0) & (scores <= 1)).all()
    assert np.array_equal(scores, model.predict(features.iloc[::-1])[::-1])


def test_metadata_that_disagrees_with_the_model_is_refused(small_model: Path, tmp_path: Path) -> None:
    (tmp_path / "model.cbm").write_bytes((small_model / "model.cbm").read_bytes())
    metadata = json.loads((small_model / "metadata.json").read_text())
    metadata["features"] = metadata["features"][::-1]
    (tmp_path / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match="features"):
        FraudModel.load(tmp_path)


def test_explain_gives_top_reasons_that_add_up_to_the_logit(
    small_model: Path, features: pd.DataFrame
) -> None:
    model = FraudModel.load(small_model)
    reasons = model.explain(features)
    assert len(reasons) == len(features)
    for row in reasons:
        assert len(row) == 3
        sizes = [abs(reason["contribution"]) for reason in row]
        assert sizes == sorted(sizes, reverse=True)
        assert all(reason["feature"] in model.feature_names for reason in row)
    everything = model.explain(features, top_k=len(model.feature_names))
    matrix = features[model.feature_names]
    expected_value = model.booster.get_feature_importance(
        Pool(matrix, cat_features=model.cat_features), type="ShapValues"
    )[:, -1]
    logits = model.booster.predict(matrix, prediction_type="RawFormulaVal")
    totals = np.array([sum(reason["contribution"] for reason in row) for row in everything]) + expected_value
    np.testing.assert_allclose(totals, logits, atol=1e-9)
    assert abs(everything[0][2]["contribution"]) >= abs(everything[0][3]["contribution"])


def test_default_model_reads_the_features_of_the_engine(features: pd.DataFrame) -> None:
    model = FraudModel.load(DEFAULT_MODEL_PATH)
    assert set(model.feature_names) <= set(FEATURES)
    assert model.version == "20261128-131b9b39"  # the shipped model's, from its metadata; stable
    assert model.predict(features).shape == (len(features),)


def test_a_bare_cbm_is_versioned_by_its_name_and_content(small_model: Path, tmp_path: Path) -> None:
    bare = tmp_path / "candidate.cbm"
    bare.write_bytes((small_model / "model.cbm").read_bytes())
    digest = hashlib.sha256(bare.read_bytes()).hexdigest()

    assert FraudModel.load(bare).version == f"candidate-{digest[:12]}"
    bare.write_bytes(bare.read_bytes() + b"\n")
    assert FraudModel.load(bare).version != f"candidate-{digest[:12]}"


@pytest.mark.parametrize("path", ["small", "default"])
def test_leaf_tables_give_catboosts_approximate_shap_values(
    path: str, small_model: Path, features: pd.DataFrame
) -> None:
    model = FraudModel.load(small_model if path == "small" else DEFAULT_MODEL_PATH)
    assert model.contributions is not None
    matrix = features[model.feature_names].to_numpy(np.float64)
    expected = model.booster.get_feature_importance(
        Pool(matrix), type="ShapValues", shap_calc_type="Approximate"
    )[:, :-1]
    np.testing.assert_allclose(model.contributions(matrix), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.contributions(matrix[:1]), expected[:1], rtol=0, atol=1e-12)


def test_a_model_with_categorical_features_is_explained_by_catboost() -> None:
    if not (SEED_MODEL.exists() and NEW_SMALL.exists()):
        pytest.skip("the seed model or new_small.csv is not available")
    model = FraudModel.load(SEED_MODEL)
    assert model.contributions is None
    reasons = model.explain(FeatureEngine().transform(schema.read_csv(NEW_SMALL)))
    assert len(reasons) == 90 and all(len(row) == 3 for row in reasons)
