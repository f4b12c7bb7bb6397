"""A trained fraud model: a CatBoost classifier plus the metadata saying which features it reads."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from catboost import CatBoostClassifier, Pool
from numpy.typing import ArrayLike

from fraudstream.ml.explanations import LeafContributions

logger = logging.getLogger(__name__)

# A frame of ``FeatureEngine.transform``, or the same columns by name (``FeatureEngine.features_and_update``).
Features = pd.DataFrame | Mapping[str, ArrayLike]

MODEL_FILE = "model.cbm"
METADATA_FILE = "metadata.json"
# The operating point of a model whose metadata does not name one (a bare ``.cbm`` such as the seed's).
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Threshold:
    """The decision threshold in use (``fraud_flag = score > value``) and where it came from."""

    value: float
    source: str


def resolve_threshold(setting: float | None, metadata: Mapping[str, Any]) -> Threshold:
    """The one rule for the threshold: the setting when given, else the model's own, else 0.5.

    ``setting`` is ``Settings.threshold`` (``FRAUDSTREAM_THRESHOLD`` or a ``--threshold`` option);
    ``metadata`` the model's (``read_metadata``). Every scorer (detector, ``score``, bench) and the UI
    go through here, so they agree on which scores are flagged.
    """
    if setting is not None:
        return Threshold(float(setting), "setting (FRAUDSTREAM_THRESHOLD or --threshold)")
    stored = metadata.get("threshold")
    if stored is None:
        return Threshold(DEFAULT_THRESHOLD, "default (the model's metadata names none)")
    if not 0.0 <= float(stored) <= 1.0:
        raise ValueError(f"the model's metadata has a threshold outside [0, 1]: {stored}")
    return Threshold(float(stored), "model metadata")


def explain_floor(setting: float | None, threshold: Threshold) -> float:
    """The lowest score explained with SHAP reasons: the setting when given, else the threshold in use,
    so that every flagged score carries its reasons."""
    return threshold.value if setting is None else setting


def read_metadata(path: Path | str) -> dict[str, Any]:
    """The metadata of a model directory; ``{}`` for a bare ``.cbm`` file."""
    path = Path(path)
    return json.loads((path / METADATA_FILE).read_text()) if path.is_dir() else {}


def file_hash(path: Path) -> str:
    """Short content hash of a model file, part of its version (12 hex digits, as bare ``.cbm`` files
    have always been named; the shipped model keeps the version its metadata states)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


@dataclass
class FraudModel:
    """Scores frames made by ``features.FeatureEngine``; loads a bare ``.cbm`` or a model directory."""

    booster: CatBoostClassifier
    version: str
    metadata: dict[str, Any] = field(default_factory=dict)
    contributions: LeafContributions | None = None

    @classmethod
    def load(cls, path: Path | str) -> FraudModel:
        path = Path(path)
        model_file = path / MODEL_FILE if path.is_dir() else path
        metadata = read_metadata(path)
        booster = CatBoostClassifier()
        booster.load_model(str(model_file))
        declared = metadata.get("features")
        if declared is not None and declared != list(booster.feature_names_):
            raise ValueError(f"{path}: metadata features differ from the model's features")
        version = metadata.get("version") or f"{model_file.stem}-{file_hash(model_file)}"
        logger.info("loaded model %s (%d features) from %s", version, len(booster.feature_names_), path)
        return cls(booster, version, metadata, LeafContributions.of(booster))

    @property
    def feature_names(self) -> list[str]:
        return list(self.booster.feature_names_)

    @property
    def cat_features(self) -> list[str]:
        names = self.feature_names
        return [names[index] for index in self.booster.get_cat_feature_indices()]

    @property
    def threshold(self) -> float:
        """The model's own operating point, from its metadata (0.5 for a bare ``.cbm``)."""
        return resolve_threshold(None, self.metadata).value

    def predict(self, features: Features) -> np.ndarray:
        """Fraud probability of each row, float64, in one CatBoost call."""
        if _rows(features) == 0:
            return np.zeros(0, dtype=np.float64)
        return self.booster.predict_proba(self._inputs(features))[:, 1].astype(np.float64)

    def _inputs(self, features: Features) -> pd.DataFrame | np.ndarray:
        """The model's columns; a float matrix when it has no categorical features (3x less overhead)."""
        names = self.feature_names
        if self.cat_features:
            return pd.DataFrame({name: np.asarray(features[name]) for name in names})
        return np.column_stack([np.asarray(features[name], dtype=np.float64) for name in names])

    def explain(self, features: Features, top_k: int = 3) -> list[list[dict[str, Any]]]:
        """Each row's ``top_k`` SHAP contributions (to the raw logit), largest absolute value first.

        CatBoost's approximate SHAP values: like the exact ones they add up, with the expected value, to
        the raw logit, but cost far less (exact ones take ~0.5 s per call, too slow to stream).
        """
        if _rows(features) == 0:
            return []
        contributions = self._contributions(features)
        order = np.argsort(-np.abs(contributions), axis=1, kind="stable")[:, :top_k]
        names = self.feature_names
        return [
            [{"feature": names[column], "contribution": float(row[column])} for column in columns]
            for row, columns in zip(contributions, order, strict=True)
        ]

    def _contributions(self, features: Features) -> np.ndarray:
        """SHAP contributions per row and feature: from the per-leaf tables where the model has them."""
        inputs = self._inputs(features)
        if self.contributions is not None:
            return self.contributions(inputs)
        pool = Pool(inputs, cat_features=self.cat_features or None)
        return self.booster.get_feature_importance(pool, type="ShapValues", shap_calc_type="Approximate")[
            :, :-1
        ]


def _rows(features: Features) -> int:
    return len(next(iter(features.values()))) if isinstance(features, Mapping) else len(features)
