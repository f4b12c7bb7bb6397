"""Drift: how far the data being scored has moved from the data the model was trained on.

At training, the reference distribution of each numeric feature and of the score is stored with the
model: inner edges of quantile bins (deciles of the training set; fewer where values repeat) and the
share of training rows in each bin. While serving, ``DriftMonitor`` counts the rows of each minute in
the same bins and gives the population stability index of a window against the reference:
``PSI = sum((actual - expected) * ln(actual / expected))`` over the bins; above 0.2 is the usual sign of
a shift worth a look. Categorical (text) features are left out.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from fraudstream.ml.model import METADATA_FILE, FraudModel

SCORE = "score"
BINS = 10
MIN_SHARE = 1e-4  # an empty bin counts as this share: ln(0) would make any PSI infinite
MIN_ROWS = 100  # fewer rows in a window than this give no PSI: too noisy to mean anything
WINDOWS = {"1h": 60, "24h": 24 * 60}


def reference(features: Mapping[str, ArrayLike], names: Sequence[str], scores: ArrayLike) -> dict[str, Any]:
    """The reference distributions of the numeric ``names`` of ``features`` and of ``scores``."""
    columns = {name: np.asarray(features[name]) for name in names}
    columns[SCORE] = np.asarray(scores)
    distributions = {}
    for name, values in columns.items():
        if not np.issubdtype(values.dtype, np.number) or len(values) == 0:
            continue
        values = values.astype(np.float64)
        edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]))
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        distributions[name] = {"edges": edges.tolist(), "expected": (counts / len(values)).tolist()}
    return {"bins": BINS, "rows": len(columns[SCORE]), "distributions": distributions}


def psi(expected: ArrayLike, actual_counts: ArrayLike) -> float:
    """The population stability index of bin counts against the expected shares of the same bins."""
    counts = np.asarray(actual_counts, dtype=np.float64)
    actual = np.maximum(counts / counts.sum(), MIN_SHARE)
    expected = np.maximum(np.asarray(expected, dtype=np.float64), MIN_SHARE)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


class DriftMonitor:
    """Bin counts per minute of what was scored, for the PSI of the last hour and the last day."""

    def __init__(self, reference: Mapping[str, Any]) -> None:
        distributions = reference["distributions"]
        self.names = list(distributions)
        self.edges = [np.asarray(distributions[name]["edges"]) for name in self.names]
        self.expected = [np.asarray(distributions[name]["expected"]) for name in self.names]
        self._width = max(len(edges) + 1 for edges in self.edges)
        self._minutes: dict[int, np.ndarray] = {}

    def observe(self, features: Mapping[str, ArrayLike], scores: ArrayLike, now: float | None = None) -> None:
        """Count a batch's rows (features by name, as the model saw them, and their scores)."""
        minute = int((time.time() if now is None else now) // 60)
        counts = self._minutes.get(minute)
        if counts is None:
            counts = self._minutes[minute] = np.zeros((len(self.names), self._width), dtype=np.int64)
            self._forget_before(minute - max(WINDOWS.values()))
        for row, (name, edges) in enumerate(zip(self.names, self.edges, strict=True)):
            values = np.asarray(scores if name == SCORE else features[name], dtype=np.float64)
            bins = np.searchsorted(edges, values, side="right")
            counts[row, : len(edges) + 1] += np.bincount(bins, minlength=len(edges) + 1)

    def psi(self, window_minutes: int, now: float | None = None) -> dict[str, float]:
        """PSI per feature (and ``score``) over the last ``window_minutes``; empty below ``MIN_ROWS``."""
        last = int((time.time() if now is None else now) // 60)
        recent = [counts for minute, counts in self._minutes.items() if minute > last - window_minutes]
        if not recent:
            return {}
        total = np.sum(recent, axis=0)
        if total[0].sum() < MIN_ROWS:
            return {}
        return {
            name: psi(expected, total[row, : len(expected)])
            for row, (name, expected) in enumerate(zip(self.names, self.expected, strict=True))
        }

    def _forget_before(self, minute: int) -> None:
        for old in [old for old in self._minutes if old < minute]:
            del self._minutes[old]


def worst(values: Mapping[str, float]) -> tuple[str, float] | None:
    """The largest PSI of a window and what it is of, or None when there is none."""
    finite = {name: value for name, value in values.items() if math.isfinite(value)}
    if not finite:
        return None
    name = max(finite, key=finite.__getitem__)
    return name, finite[name]


def store_reference(
    model_dir: Path, model: FraudModel, features: pd.DataFrame, max_rows: int = 200_000
) -> None:
    """Add the reference distributions of the training ``features`` (and their scores) to the model's
    metadata. Over ``max_rows`` rows, every k-th row is used: quantiles need no more, and the rows stay
    spread over the whole training period."""
    step = max(1, len(features) // max_rows)
    sample = features.iloc[::step]
    numeric = [name for name in model.feature_names if name not in model.cat_features]
    path = Path(model_dir) / METADATA_FILE
    metadata = json.loads(path.read_text())
    metadata["reference"] = reference(sample, numeric, model.predict(sample))
    path.write_text(json.dumps(metadata, indent=2) + "\n")
