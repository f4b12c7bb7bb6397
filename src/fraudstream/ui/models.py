"""What the Models page shows: the registry's versions, the champion/challenger comparison on labelled
transactions, and the detector's drift (from its /healthz, as `fraudstream status` reads it)."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any

import orjson
import pandas as pd

from fraudstream.config import Settings
from fraudstream.ml.registry import CHALLENGER, CHAMPION, Registry
from fraudstream.pipeline.lifecycle import Window, comparison


def reader_settings(settings: Settings) -> Settings:
    """The page reads PostgreSQL as the read-only role, like every page."""
    user, password = settings.pg_reader
    return settings.model_copy(update={"pg_user": user, "pg_password": password})


def versions_frame(registry: Registry) -> pd.DataFrame:
    rows = [
        {
            "version": version.number,
            "aliases": ", ".join(version.aliases),
            "created": version.created_at.strftime("%Y-%m-%d %H:%M"),
            "training period": version.tags.get("training_period", ""),
            "validation PR-AUC": version.tags.get("validation_pr_auc", ""),
            "drift reference": version.tags.get("has_reference", ""),
        }
        for version in registry.versions()
    ]
    return pd.DataFrame(
        rows,
        columns=["version", "aliases", "created", "training period", "validation PR-AUC", "drift reference"],
    )


def comparison_table(result: dict[str, Any]) -> pd.DataFrame:
    """One row per metric, a column per model."""
    names = {"champion": result["champion_version"], "challenger": result["challenger_version"]}
    rows = []
    for metric, path in (
        ("PR-AUC", ("pr_auc",)),
        ("precision at the threshold", ("at_threshold", "precision")),
        ("recall at the threshold", ("at_threshold", "recall")),
        (f"precision at the alert budget ({result['alert_budget']}/day)", ("at_budget", "precision")),
        (f"recall at the alert budget ({result['alert_budget']}/day)", ("at_budget", "recall")),
    ):
        row = {"metric": metric}
        for role, label in names.items():
            value = result[role]
            for key in path:
                value = value[key] if value is not None else None
            row[f"{role} {label}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def champion_and_challenger(registry: Registry) -> tuple[int | None, int | None]:
    champion, challenger = registry.alias(CHAMPION), registry.alias(CHALLENGER)
    return (
        None if champion is None else champion.number,
        None if challenger is None else challenger.number,
    )


def shadow_comparison(settings: Settings, registry: Registry, challenger: int, days: float) -> dict[str, Any]:
    return comparison(reader_settings(settings), registry, challenger, Window.last(days))


def drift_frame(settings: Settings, timeout: float = 2.0) -> pd.DataFrame | None:
    """PSI by feature and window from the detector's /healthz; None when no detector answers."""
    url = f"http://127.0.0.1:{settings.detector_metrics_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            health = orjson.loads(reply.read())
    except urllib.error.HTTPError as error:
        health = orjson.loads(error.read())
    except OSError:
        return None
    psi = (health.get("drift") or {}).get("psi", {})
    rows = [
        {"feature": feature, "window": window, "psi": value}
        for window, values in psi.items()
        for feature, value in values.items()
    ]
    return pd.DataFrame(rows, columns=["feature", "window", "psi"])
