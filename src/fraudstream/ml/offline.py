"""Offline scoring of a file with the serving code path: the stream's FeatureEngine and FraudModel."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fraudstream.config import DEFAULT_MODEL_PATH
from fraudstream.contracts import schema
from fraudstream.ml.evaluation import classification_metrics
from fraudstream.ml.features import FeatureEngine
from fraudstream.ml.model import Features, FraudModel, resolve_threshold

logger = logging.getLogger(__name__)

ID_COLUMN = "transaction_id"
DECISION_COLUMN = "decision"


# More output columns for the rows in time order, from their inputs, features, scores and flags: the
# rules' decision (``rules.ruleset.decision_columns``), which ml does not know about.
Decide = Callable[[pd.DataFrame, Features, np.ndarray, np.ndarray], pd.DataFrame]


def score_frame(
    frame: pd.DataFrame,
    model: FraudModel,
    threshold: float | None = None,
    engine: FeatureEngine | None = None,
    decide: Decide | None = None,
) -> pd.DataFrame:
    """``score`` and ``fraud_flag`` (score > threshold) per row of ``frame``, in the input's row order,
    then the columns of ``decide`` if given.

    ``threshold`` overrides the model's own (``resolve_threshold``).

    Rows are processed in time order (stable sort by ``transaction_time``), the order the producer sends
    them in, so each customer's history is the one the stream detector sees.
    """
    engine = engine if engine is not None else FeatureEngine()
    times = schema.transaction_times(frame)
    order = np.argsort(times, kind="stable")
    ordered = frame.iloc[order]
    features = engine.transform(ordered)
    scores = model.predict(features)
    flags = (scores > resolve_threshold(threshold, model.metadata).value).astype(np.int64)
    result = pd.DataFrame({"score": scores, "fraud_flag": flags})
    if decide is not None:
        extra = decide(ordered, features, scores, flags).reset_index(drop=True)
        result = pd.concat([result, extra], axis=1)
    return result.iloc[np.argsort(order, kind="stable")].set_axis(frame.index)


def score_file(
    path: Path | str,
    out_path: Path | str,
    model_path: Path | str = DEFAULT_MODEL_PATH,
    threshold: float | None = None,
    decide: Decide | None = None,
) -> dict[str, Any]:
    """Score a CSV in the input format into ``out_path`` (``[transaction_id,]score,fraud_flag`` and the
    columns of ``decide``).

    ``threshold`` overrides the model's own (``resolve_threshold``). Returns quality metrics when the
    input has a ``target`` column, else the counts of rows and flags; both name the threshold used;
    with ``decide``, the count of each decision too.
    """
    raw = pd.read_csv(path)
    frame = schema.coerce(raw)
    model = FraudModel.load(model_path)
    resolved = resolve_threshold(threshold, model.metadata)
    threshold = resolved.value
    logger.info(
        "scoring %d rows of %s with model %s, threshold %s (%s)",
        len(frame), path, model.version, threshold, resolved.source,
    )  # fmt: skip
    result = score_frame(frame, model, threshold, decide=decide)
    if ID_COLUMN in raw.columns:
        result.insert(0, ID_COLUMN, raw[ID_COLUMN])
    result.to_csv(out_path, index=False)
    if schema.TARGET_COLUMN in frame.columns:
        report = classification_metrics(
            frame[schema.TARGET_COLUMN].to_numpy(), result["score"].to_numpy(), threshold
        )
    else:
        report = {"rows": len(result), "flagged": int(result["fraud_flag"].sum()), "threshold": threshold}
    if decide is not None:
        report["decisions"] = {str(k): int(v) for k, v in result[DECISION_COLUMN].value_counts().items()}
    return report
