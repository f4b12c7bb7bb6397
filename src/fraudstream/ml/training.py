"""Training of the fraud model: features in time order, a time-based validation split, CatBoost, reports."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import matplotlib
import numpy as np
import pandas as pd
from catboost import CatBoostClassifier
from sklearn.metrics import average_precision_score, precision_recall_curve

from fraudstream.contracts import schema
from fraudstream.ml.drift import store_reference
from fraudstream.ml.evaluation import alert_budget_metrics, best_f1, classification_metrics
from fraudstream.ml.features import BEHAVIOUR_FEATURES, STATE_VERSION, FeatureEngine
from fraudstream.ml.model import METADATA_FILE, MODEL_FILE, FraudModel, file_hash

matplotlib.use("Agg")
from matplotlib import pyplot as plt

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Category and gender enter as integer codes, not as CatBoost categorical features: as good on this data,
# and training and prediction are several times faster without categorical features.
MODEL_FEATURES = ("amount", *BEHAVIOUR_FEATURES)
# The threshold is the one of the best F1 on the validation part, stored in the metadata; serving uses it
# unless a setting overrides it (model.resolve_threshold). Fraud is 0.6 % of
# rows: a weight of 3 on fraud keeps that threshold in the middle of the score range, where "Balanced"
# (~160) would push it close to 1.
NEW_MODEL = "new model"
PARAMS = {
    "depth": 6,
    "learning_rate": 0.1,
    "l2_leaf_reg": 3.0,
    "scale_pos_weight": 3.0,
    "random_seed": 0,
    "thread_count": 2,
}
# The length early stopping chose on the selection period of the three-period validation (README, the model).
ITERATIONS = 400


def train_model(
    data_path: Path,
    out_dir: Path,
    *,
    validation_fraction: float = 0.2,
    progress: bool = True,
    iterations: int = ITERATIONS,
    compare_with: Path | None = None,
) -> dict[str, Any]:
    """Train on ``data_path`` (Kaggle format with ``target``), write the model and reports to ``out_dir``.

    The validation part is the last ``validation_fraction`` of the period; returns the report. With
    ``compare_with`` (another model, e.g. the seed's ``my_model.cbm``), the report also gives that
    model's validation on the same rows, at its own threshold.
    """
    if not 0 < validation_fraction < 1:
        raise ValueError("validation_fraction must be between 0 and 1")
    stages = _Stages(progress)
    compared = FraudModel.load(compare_with) if compare_with is not None else None
    frame = stages.run("read data", lambda: _read_sorted(Path(data_path)))
    features = stages.run("compute features", lambda: FeatureEngine().transform(frame))
    minutes = _minutes(frame)
    split_minute = _split_minute(minutes, validation_fraction)
    train, valid = minutes < split_minute, minutes >= split_minute
    labels = frame[schema.TARGET_COLUMN].to_numpy()
    booster = stages.run(
        f"train CatBoost on {train.sum()} rows",
        lambda: _fit(features[train], labels[train], iterations, stages),
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(out_dir / MODEL_FILE))
    version = f"{datetime.now(UTC):%Y%m%d}-{file_hash(out_dir / MODEL_FILE)}"
    model = FraudModel(booster=booster, version=version)
    scores = stages.run(
        f"score {valid.sum()} validation rows", lambda: _validation_scores(model, features[valid], compared)
    )
    report = _report(version, scores, labels[valid], minutes[valid] // (24 * 60), compared)
    report["data"] = _data_summary(Path(data_path), frame, minutes, split_minute, train, valid)
    report["feature_importance"] = _importance(booster)
    stages.run("write artifacts", lambda: _write_artifacts(out_dir, model, report, scores, labels[valid]))
    stages.run("reference distributions", lambda: store_reference(out_dir, model, features[train]))
    return report


class _Stages:
    """Per-stage log lines with timings (and CatBoost iterations when ``progress``)."""

    def __init__(self, progress: bool) -> None:
        self.progress = progress

    def run(self, name: str, action: Callable[[], T]) -> T:
        logger.info("%s ...", name)
        started = time.perf_counter()
        result = action()
        logger.info("%s done in %.1f s", name, time.perf_counter() - started)
        return result

    def after_iteration(self, info: Any) -> bool:
        """CatBoost callback: a log line every 100 iterations."""
        if self.progress and info.iteration % 100 == 0:
            logger.info(
                "  iteration %d, train logloss %.5f", info.iteration, info.metrics["learn"]["Logloss"][-1]
            )
        return True


def _read_sorted(path: Path) -> pd.DataFrame:
    frame = schema.read_csv(path)
    if schema.TARGET_COLUMN not in frame.columns:
        raise schema.InputFormatError(f"{path}: no {schema.TARGET_COLUMN!r} column to train on")
    order = np.argsort(_minutes(frame), kind="stable")
    return frame.iloc[order].reset_index(drop=True)


def _minutes(frame: pd.DataFrame) -> np.ndarray:
    return schema.transaction_times(frame).astype("datetime64[m]").astype(np.int64)


def _split_minute(minutes: np.ndarray, validation_fraction: float) -> int:
    """First minute of validation: all rows of one minute fall on the same side, validation strictly later."""
    split = int(minutes[int(len(minutes) * (1 - validation_fraction))])
    if split <= minutes[0]:
        raise ValueError("not enough distinct times for a time-based validation split")
    return split


def _fit(features: pd.DataFrame, labels: np.ndarray, iterations: int, stages: _Stages) -> CatBoostClassifier:
    booster = CatBoostClassifier(iterations=iterations, verbose=False, allow_writing_files=False, **PARAMS)
    booster.fit(features[list(MODEL_FEATURES)], labels, callbacks=[stages])
    return booster


def _validation_scores(
    model: FraudModel, features: pd.DataFrame, compared: FraudModel | None
) -> dict[str, np.ndarray]:
    """Scores of the new model and of the compared one (each on its own columns), by model name."""
    scores = {NEW_MODEL: model.predict(features)}
    if compared is not None:
        scores[compared.version] = compared.predict(features)
    return scores


def _report(
    version: str,
    scores: dict[str, np.ndarray],
    labels: np.ndarray,
    days: np.ndarray,
    compared: FraudModel | None,
) -> dict[str, Any]:
    """Metrics on the validation part: the new model at its threshold (the best F1 there, so its F1 is
    optimistic), the compared model at its own; both at the alert budget, which needs no threshold."""
    threshold = best_f1(labels, scores[NEW_MODEL])["threshold"]
    report: dict[str, Any] = {
        "model": version,
        "validation": classification_metrics(labels, scores[NEW_MODEL], threshold),
        "alert_budget": alert_budget_metrics(labels, scores[NEW_MODEL], days),
    }
    if compared is not None:
        report["compared_model"] = compared.version
        report["compared_validation"] = classification_metrics(
            labels, scores[compared.version], compared.threshold
        )
        report["compared_alert_budget"] = alert_budget_metrics(labels, scores[compared.version], days)
    return report


def _data_summary(
    path: Path,
    frame: pd.DataFrame,
    minutes: np.ndarray,
    split_minute: int,
    train: np.ndarray,
    valid: np.ndarray,
) -> dict[str, Any]:
    labels = frame[schema.TARGET_COLUMN].to_numpy()
    return {
        "path": str(path),
        "rows": len(frame),
        "fraud_rate": float(labels.mean()),
        "time_min": _format_minute(minutes[0]),
        "time_max": _format_minute(minutes[-1]),
        "split_time": _format_minute(split_minute),
        "train": {
            "rows": int(train.sum()),
            "frauds": int(labels[train].sum()),
            "time_max": _last(minutes, train),
        },
        "validation": {
            "rows": int(valid.sum()),
            "frauds": int(labels[valid].sum()),
            "time_min": _format_minute(minutes[valid][0]),
        },
    }


def _last(minutes: np.ndarray, mask: np.ndarray) -> str:
    return _format_minute(minutes[mask][-1])


def _format_minute(minute: int) -> str:
    return str(np.datetime64(int(minute), "m").astype(datetime).strftime(schema.TIME_FORMAT))


def _importance(booster: CatBoostClassifier) -> list[dict[str, Any]]:
    pairs = sorted(
        zip(booster.feature_names_, booster.get_feature_importance(), strict=True), key=lambda p: -p[1]
    )
    return [{"feature": name, "importance": round(float(value), 3)} for name, value in pairs[:20]]


def _write_artifacts(
    out_dir: Path,
    model: FraudModel,
    report: dict[str, Any],
    scores: dict[str, np.ndarray],
    labels: np.ndarray,
) -> None:
    metadata = {
        "version": model.version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "features": model.feature_names,
        "cat_features": model.cat_features,
        "threshold": report["validation"]["threshold"],
        "threshold_rule": "best F1 on the validation part",
        "params": {**PARAMS, "iterations": model.booster.tree_count_},
        "feature_state_version": STATE_VERSION,
        "data": report["data"],
        "metrics": report["validation"],
        "alert_budget": report["alert_budget"],
    }
    (out_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "report.md").write_text(_markdown(report))
    _plot_pr_curve(out_dir / "pr_curve.png", scores, labels)


def _markdown(report: dict[str, Any]) -> str:
    data = report["data"]
    columns = [(NEW_MODEL, report["validation"], report["alert_budget"])]
    if "compared_model" in report:
        columns.append(
            (report["compared_model"], report["compared_validation"], report["compared_alert_budget"])
        )
    per_day = report["alert_budget"]["alerts_per_day"]
    lines = [
        f"# Fraud model {report['model']}",
        "",
        f"Data: {data['rows']} rows, {data['time_min']} .. {data['time_max']}, "
        f"fraud rate {data['fraud_rate']:.4%}.",
        f"Train: {data['train']['rows']} rows up to {data['train']['time_max']}; "
        f"validation: {data['validation']['rows']} rows from {data['split_time']} (split by time).",
        "",
        "The new model's threshold is the one of its best F1 on this validation part (so its F1 here is",
        "optimistic; the README gives figures on a later, untouched period); a compared model's is its own.",
        "",
        "| metric (validation, each at its threshold) | " + " | ".join(name for name, _, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for key in ("threshold", "roc_auc", "pr_auc", "precision", "recall", "f1"):
        lines.append(f"| {key} | " + " | ".join(f"{metrics[key]:.4f}" for _, metrics, _ in columns) + " |")
    for key in ("tp", "fp", "fn", "tn"):
        lines.append(
            f"| {key} | " + " | ".join(str(metrics["confusion"][key]) for _, metrics, _ in columns) + " |"
        )
    for key in ("precision", "recall"):
        lines.append(
            f"| {key} at {per_day} alerts/day | "
            + " | ".join(f"{budget[key]:.4f}" for _, _, budget in columns)
            + " |"
        )
    lines += [
        "",
        f"At the alert budget, the {per_day} highest scores of each day are reviewed: "
        f"{report['alert_budget']['alerts']} alerts, {report['alert_budget']['found']} frauds found.",
    ]
    lines += ["", "## Feature importance (top 20)", "", "| feature | importance |", "|---|---|"]
    lines += [f"| {item['feature']} | {item['importance']:.3f} |" for item in report["feature_importance"]]
    return "\n".join(lines) + "\n"


def _plot_pr_curve(path: Path, scores: dict[str, np.ndarray], labels: np.ndarray) -> None:
    figure, axes = plt.subplots(figsize=(6, 5))
    for name, values in scores.items():
        precision, recall, _ = precision_recall_curve(labels, values)
        axes.plot(recall, precision, label=f"{name} (PR-AUC {average_precision_score(labels, values):.3f})")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall on the validation period")
    axes.set(xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
