"""fraudstream: real-time card-fraud detection on Kafka, CatBoost and PostgreSQL, and a library for notebooks.

    from fraudstream import FraudModel, Settings, score_frame

The names below load on first use (PEP 562), so ``import fraudstream`` and ``fraudstream --help``
stay fast: CatBoost, pandas and the Kafka client load only with the name that needs them.

Subpackages, each importing only those below it: ``ops`` (running and watching the system) >
``ui`` | ``infra`` > ``pipeline`` (the stream services, Kafka clients) > ``ml`` (features, model)
> ``contracts`` (data formats) > the foundations (``config``, ``logs``, ``telemetry``). The
directions are checked by import-linter (``pyproject.toml``); ``cli`` sits on top.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fraudstream.config import Settings
    from fraudstream.contracts.schema import InputFormatError, read_csv
    from fraudstream.ml.features import FeatureEngine
    from fraudstream.ml.model import FraudModel
    from fraudstream.ml.offline import score_file, score_frame
    from fraudstream.ops.loadgen import transactions as synthetic_transactions
    from fraudstream.pipeline.producer import TransactionProducer

# name -> (module, attribute)
_EXPORTS = {
    "Settings": ("fraudstream.config", "Settings"),
    "read_csv": ("fraudstream.contracts.schema", "read_csv"),
    "InputFormatError": ("fraudstream.contracts.schema", "InputFormatError"),
    "FeatureEngine": ("fraudstream.ml.features", "FeatureEngine"),
    "FraudModel": ("fraudstream.ml.model", "FraudModel"),
    "score_frame": ("fraudstream.ml.offline", "score_frame"),
    "score_file": ("fraudstream.ml.offline", "score_file"),
    "synthetic_transactions": ("fraudstream.ops.loadgen", "transactions"),
    "TransactionProducer": ("fraudstream.pipeline.producer", "TransactionProducer"),
}

__all__ = [
    "FeatureEngine",
    "FraudModel",
    "InputFormatError",
    "Settings",
    "TransactionProducer",
    "read_csv",
    "score_file",
    "score_frame",
    "synthetic_transactions",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fraudstream' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
