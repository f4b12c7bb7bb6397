"""A training run in MLflow: parameters, metrics, the report and the PR curve; then a registered version."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from fraudstream.ml.model import METADATA_FILE
from fraudstream.ml.registry import Registry, Version

logger = logging.getLogger(__name__)

REPORT_FILES = ("report.md", "report.json", "pr_curve.png")
METRICS = ("pr_auc", "roc_auc", "precision", "recall", "f1")


def log_and_register(registry: Registry, model_dir: Path, report: dict[str, Any]) -> Version:
    """Log the training of ``model_dir`` to a run of the experiment, and register it as a new version."""
    from mlflow.entities import Metric, Param

    metadata = json.loads((Path(model_dir) / METADATA_FILE).read_text())
    run_id = registry.start_run(f"train {metadata['version']}")
    params = {**metadata.get("params", {}), **_period(metadata)}
    metrics = {f"validation_{key}": report["validation"].get(key) for key in METRICS}
    metrics.update({f"best_f1_{key}": value for key, value in report.get("best_f1", {}).items()})
    timestamp = int(time.time() * 1000)
    registry.client.log_batch(
        run_id,
        metrics=[
            Metric(key, float(value), timestamp, 0) for key, value in metrics.items() if value is not None
        ],
        params=[Param(key, str(value)[:500]) for key, value in params.items()],
    )
    for name in REPORT_FILES:
        if (Path(model_dir) / name).exists():
            registry.client.log_artifact(run_id, str(Path(model_dir) / name))
    registry.client.set_terminated(run_id)
    version = registry.register(model_dir, run_id, description=f"trained on {params.get('training_period')}")
    logger.info("logged run %s, registered %s", run_id, version.label)
    return version


def _period(metadata: dict[str, Any]) -> dict[str, Any]:
    data = metadata.get("data", {})
    return {
        "training_period": f"{data.get('time_min')} .. {data.get('time_max')}",
        "split_time": data.get("split_time"),
        "training_rows": data.get("rows"),
        "data_source": data.get("path"),
        "features": ",".join(metadata.get("features", [])),
    }
