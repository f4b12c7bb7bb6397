"""The model's life in production, as the CLI and the Models page drive it: register, shadow, compare,
promote (refused when worse than the champion unless forced), roll back, retrain from stored data."""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fraudstream.config import Settings
from fraudstream.ml.comparison import challenger_not_worse, compare
from fraudstream.ml.model import METADATA_FILE, resolve_threshold
from fraudstream.ml.registry import CHAMPION, Registry, RegistryError, Version, model_dir_from_cbm
from fraudstream.ml.training import train_model
from fraudstream.pipeline.labelled import shadow_pairs, training_rows

logger = logging.getLogger(__name__)

COMPARISON_DAYS = 30


class PromotionRefused(RegistryError):
    """The version is worse than the champion on the shadow comparison (or cannot be compared)."""


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    @classmethod
    def last(cls, days: float, now: datetime | None = None) -> Window:
        until = now or datetime.now(UTC)
        return cls(until - timedelta(days=days), until)

    @property
    def days(self) -> float:
        return (self.until - self.since).total_seconds() / 86400


def registry_of(settings: Settings) -> Registry:
    if not settings.registry_configured:
        raise RegistryError("no model registry configured: set FRAUDSTREAM_MLFLOW_TRACKING_URI")
    return Registry(settings.mlflow_tracking_uri, settings.registered_model)


def ensure_champion(settings: Settings) -> str | None:
    """With a registry and no champion yet (a fresh install), register ``model_path`` and make it the
    champion, so that `fraudstream run` serves from the first start; the champion's label, or None
    without a registry."""
    if not settings.registry_configured:
        return None
    registry = registry_of(settings)
    champion = registry.alias(CHAMPION)
    if champion is None:
        champion = register_path(registry, settings.model_path)
        registry.set_champion(champion.number)
        logger.info("first champion registered", extra={"fields": {"version": champion.label}})
    return champion.label


def register_path(registry: Registry, path: Path) -> Version:
    """Register a model directory, or a bare CatBoost ``.cbm`` with the metadata it implies."""
    path = Path(path)
    if path.is_dir():
        if not (path / METADATA_FILE).exists():
            raise RegistryError(f"{path} is not a model directory: no {METADATA_FILE}")
        return registry.register(path)
    with tempfile.TemporaryDirectory() as staging:
        return registry.register(model_dir_from_cbm(path, Path(staging) / "model"))


def comparison(settings: Settings, registry: Registry, number: int, window: Window) -> dict[str, Any]:
    """Champion against version ``number`` on the labelled transactions it scored in shadow."""
    champion = registry.alias(CHAMPION)
    if champion is None:
        raise RegistryError(f"no '{CHAMPION}' alias on {registry.name}")
    challenger = registry.version(number)
    rows = shadow_pairs(settings.pg_dsn, champion.label, challenger.label, window.since, window.until)
    thresholds = (_threshold(settings, champion), _threshold(settings, challenger))
    result = compare(rows, thresholds, settings.alert_budget)
    return {"champion_version": champion.label, "challenger_version": challenger.label, **result}


def _threshold(settings: Settings, version: Version) -> float:
    """The threshold a registered version flags at: the setting when given, else its own."""
    own = version.tags.get("threshold")
    return resolve_threshold(settings.threshold, {} if own is None else {"threshold": float(own)}).value


def promote(settings: Settings, registry: Registry, number: int, force: bool, window: Window) -> str:
    """Make version ``number`` the champion; refused when the shadow comparison says it is worse than
    the champion (or there is no comparison), unless ``force``. The first champion needs no comparison."""
    champion = registry.alias(CHAMPION)
    if champion is not None and champion.number == number:
        return f"{champion.label} is the champion already"
    verdict = "first champion"
    if champion is not None:
        result = comparison(settings, registry, number, window)
        allowed, verdict = challenger_not_worse(result)
        if not allowed and not force:
            raise PromotionRefused(f"not promoted: {verdict}; --force to promote anyway")
        verdict = verdict if allowed else f"forced although {verdict}"
    previous = registry.set_champion(number)
    logger.info("promoted", extra={"fields": {"version": number, "previous": previous, "why": verdict}})
    return f"{registry.name}/{number} is the champion ({verdict}); previous: {previous}"


def rollback(registry: Registry) -> str:
    """Make the previous champion the champion again (recorded as a promotion itself)."""
    previous = registry.previous_champion()
    if previous is None:
        raise RegistryError("no previous champion to roll back to")
    current = registry.set_champion(previous)
    return f"rolled back: {registry.name}/{previous} is the champion again (was {current})"


def train_from_db(
    settings: Settings, window: Window, out_dir: Path, now: datetime | None = None, iterations: int = 1000
) -> dict[str, Any]:
    """Train on the window's stored transactions and labels; the labelling rule and counts go into the
    report and the model's metadata. Validation is the latest part of the period, as for a file."""
    maturity = timedelta(days=settings.label_maturity_days)
    rows = training_rows(settings.pg_dsn, window.since, window.until, maturity, now or datetime.now(UTC))
    if rows.frame.empty or rows.frame["target"].nunique() < 2:
        raise RegistryError(f"nothing to train on: {rows.counts} (both classes are needed)")
    with tempfile.TemporaryDirectory() as staging:
        data = Path(staging) / "stored.csv.gz"
        rows.frame.to_csv(data, index=False)
        report = train_model(data, out_dir, progress=False, iterations=iterations)
    labels = {
        "rule": rows.rule,
        "counts": rows.counts,
        "since": str(window.since),
        "until": str(window.until),
    }
    source = f"fraud_scores {window.since:%Y-%m-%d %H:%M} .. {window.until:%Y-%m-%d %H:%M} UTC"
    _annotate(Path(out_dir), labels, source)
    return {**report, "labels": labels, "data": {**report["data"], "path": source}}


def _annotate(out_dir: Path, labels: dict[str, Any], source: str) -> None:
    """The labelling rule and counts in metadata.json, report.json and report.md."""
    for name in (METADATA_FILE, "report.json"):
        document = json.loads((out_dir / name).read_text())
        document["labels"] = labels
        document["data"]["path"] = source
        (out_dir / name).write_text(json.dumps(document, indent=2) + "\n")
    counts = "\n".join(f"| {key} | {value} |" for key, value in labels["counts"].items())
    section = (
        f"\n## Labels\n\nSource: {source}.\n\nRule: {labels['rule']}.\n\n"
        f"| rows | count |\n|---|---|\n{counts}\n"
    )
    with (out_dir / "report.md").open("a") as report:
        report.write(section)
