"""Fixtures of the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudstream.ml.training import train_model
from tests.unit.transactions import synthetic


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model directory trained in seconds on synthetic transactions."""
    data = tmp_path_factory.mktemp("data") / "train.csv"
    synthetic(customers=30, days=40).to_csv(data, index=False)
    out = tmp_path_factory.mktemp("model")
    train_model(data, out, iterations=40, progress=False)
    return out
