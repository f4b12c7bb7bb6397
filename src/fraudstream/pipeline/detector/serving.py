"""The models a detector serves: the champion (scores and decides) and an optional shadow challenger.

Without a registry (``FRAUDSTREAM_MLFLOW_TRACKING_URI=''``) the champion is ``model_path``, fixed. With
one, a background thread resolves the aliases every ``model_poll_s`` seconds; a version that changed is
downloaded, checked (the sha256 registered with it, the model loads, it reads only features the stream
computes and scores a probe transaction) and published as a new immutable ``Models``. The detector asks
for ``current()`` once per batch, so a swap lands between two batches: every row of a batch is scored by
one version, and since a batch is one Kafka transaction, exactly-once is kept across the swap.

If the registry stops answering, the models in hand keep serving and ``status()`` says since when.
At start, with a registry configured, nothing is served until a champion has been loaded and checked.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from catboost import CatBoostError

from fraudstream.config import Settings
from fraudstream.contracts import schema
from fraudstream.logs import fields
from fraudstream.ml.drift import DriftMonitor
from fraudstream.ml.features import FEATURES, FeatureEngine
from fraudstream.ml.model import FraudModel
from fraudstream.ml.registry import (
    CHALLENGER,
    CHAMPION,
    Registry,
    RegistryError,
    RegistryUnreachable,
    Version,
)

logger = logging.getLogger(__name__)
# While the registry is down, urllib3 would log each failed poll; ``_failed`` logs the outage once.
logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)


@dataclass(frozen=True)
class Models:
    """What one batch is scored with; replaced as a whole, never changed in place."""

    champion: FraudModel
    challenger: FraudModel | None = None
    drift: DriftMonitor | None = None


class ModelServing:
    """Holds the current ``Models`` and, with a registry, follows its aliases in a background thread."""

    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.cache_dir = Path(settings.data_dir) / "models"
        self._models: Models | None = None
        self._versions: tuple[int | None, int | None] = (None, None)
        self._unreachable_since: datetime | None = None
        self._last_error: str | None = None
        self._rejected: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loaded = threading.Event()

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelServing:
        """Following the registry when one is configured, else serving ``model_path``."""
        if not settings.registry_configured:
            return cls.fixed(settings, FraudModel.load(settings.model_path))
        return cls(settings, Registry(settings.mlflow_tracking_uri, settings.registered_model))

    @classmethod
    def fixed(cls, settings: Settings, model: FraudModel) -> ModelServing:
        """Always ``model``, checked first; no registry."""
        check(model)
        serving = cls(settings)
        serving._publish(Models(model, drift=_drift_monitor(model)), (None, None))
        return serving

    def current(self) -> Models:
        """The models for the next batch (call once per batch)."""
        if self._models is None:
            raise RuntimeError("no model loaded yet: wait_loaded() first")
        return self._models

    def start(self) -> None:
        """Follow the registry's aliases in the background (nothing to do without a registry)."""
        if self.registry is not None and self._thread is None:
            self._thread = threading.Thread(target=self._follow, name="model-registry", daemon=True)
            self._thread.start()

    def wait_loaded(self, stop: threading.Event) -> bool:
        """Block until a champion is verified and loaded (or ``stop`` is set); True when loaded."""
        while not stop.is_set():
            if self._models is not None or self._loaded.wait(0.5):
                return True
        return False

    def stop(self) -> None:
        self._stop.set()

    def status(self) -> dict[str, Any]:
        """For /healthz and status: what serves, and the registry's state."""
        models = self._models
        report: dict[str, Any] = {
            "champion": None if models is None else models.champion.version,
            "challenger": None if models is None or models.challenger is None else models.challenger.version,
        }
        if self.registry is None:
            report["model_registry"] = "not configured"
        elif self._unreachable_since is not None:
            report["model_registry"] = (
                f"unreachable since {self._unreachable_since.isoformat(timespec='seconds')}"
            )
        elif self._last_error is not None:
            report["model_registry"] = self._last_error
        else:
            report["model_registry"] = "ok"
        return report

    def refresh(self) -> None:
        """Resolve the aliases once; load, check and publish what changed. Raises on a registry failure."""
        assert self.registry is not None
        champion, challenger = self.registry.alias(CHAMPION), self.registry.alias(CHALLENGER)
        self._unreachable_since = None
        if champion is None:
            self._last_error = f"no '{CHAMPION}' alias on registered model {self.registry.name}"
            return
        numbers = (champion.number, None if challenger is None else challenger.number)
        if numbers == self._versions:
            self._last_error = self._challenger_problem(numbers[1])
            return
        current = self._models
        keep_champion = current is not None and numbers[0] == self._versions[0]
        champion_model = current.champion if keep_champion else self._verified(champion)
        challenger_model = None
        if challenger is not None:
            keep = current is not None and current.challenger is not None and numbers[1] == self._versions[1]
            try:
                challenger_model = current.challenger if keep else self._verified(challenger)
            except RegistryUnreachable:
                raise
            except RegistryError:  # the champion serves all the same, without a shadow
                pass
        drift = current.drift if keep_champion else _drift_monitor(champion_model)
        self._publish(Models(champion_model, challenger_model, drift), numbers)
        self._last_error = self._challenger_problem(numbers[1])

    def _challenger_problem(self, number: int | None) -> str | None:
        rejected = self._rejected.get(number) if number is not None else None
        return None if rejected is None else f"challenger not loaded: {rejected}"

    def poll(self) -> None:
        """One ``refresh``; a failure is recorded (``status``), and what serves stays in place."""
        try:
            self.refresh()
        except RegistryError as error:
            self._failed(error)
        except Exception as error:  # a bad model must not end the thread: the old one keeps serving
            logger.exception("model refresh failed")
            self._failed(error)

    def _follow(self) -> None:
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(self.settings.model_poll_s)

    def _failed(self, error: BaseException) -> None:
        message = str(error).splitlines()[0] if str(error) else repr(error)
        if getattr(error, "retriable", False):
            if self._unreachable_since is None:
                self._unreachable_since = datetime.now(UTC)
                logger.warning("model registry unreachable", extra=fields(error=message))
        else:
            self._last_error = message
            logger.warning("model not loaded", extra=fields(error=message))

    def _verified(self, version: Version) -> FraudModel:
        """The version's model, downloaded and checked before it may serve; a version that failed the
        checks once is not downloaded again (registered versions do not change)."""
        assert self.registry is not None
        if version.number in self._rejected:
            raise RegistryError(self._rejected[version.number])
        try:
            path = self.registry.download(version, self.cache_dir)
            model = FraudModel.load(path)
            model.version = version.label
            check(model)
        except RegistryUnreachable:
            raise
        except (RegistryError, OSError, ValueError, CatBoostError) as error:
            self._rejected[version.number] = f"{version.label} refused: {error}"
            raise RegistryError(self._rejected[version.number]) from error
        return model

    def _publish(self, models: Models, numbers: tuple[int | None, int | None]) -> None:
        self._models, self._versions = models, numbers
        self._loaded.set()
        challenger = None if models.challenger is None else models.challenger.version
        logger.info("serving", extra=fields(champion=models.champion.version, challenger=challenger))


def check(model: FraudModel) -> None:
    """Refuse a model the stream cannot serve: unknown features, or no probability for a probe row."""
    unknown = [name for name in model.feature_names if name not in FEATURES]
    if unknown:
        raise RegistryError(f"{model.version} reads features the stream does not compute: {unknown}")
    score = model.predict(FeatureEngine().features_and_update(probe_transaction()))
    if score.shape != (1,) or not np.isfinite(score).all() or not 0.0 <= score[0] <= 1.0:
        raise RegistryError(f"{model.version} gave {score!r} for the probe transaction")


def probe_transaction() -> Any:
    """One ordinary transaction in the input format."""
    return schema.from_columns(
        {
            "transaction_time": ["2020-06-01 12:00"], "merch": ["fraud_Probe"], "cat_id": ["grocery_pos"],
            "amount": [42.0], "name_1": ["Probe"], "name_2": ["Row"], "gender": ["F"],
            "street": ["1 Probe Street"], "one_city": ["Springfield"], "us_state": ["IL"],
            "post_code": [62701], "lat": [39.78], "lon": [-89.65], "population_city": [116000],
            "jobs": ["Engineer"], "merchant_lat": [39.9], "merchant_lon": [-89.5],
        }
    )  # fmt: skip


def _drift_monitor(model: FraudModel) -> DriftMonitor | None:
    reference = model.metadata.get("reference")
    return DriftMonitor(reference) if reference else None


def _drift_monitor(model: FraudModel) -> DriftMonitor | None:
    reference = model.metadata.get("reference")
    return DriftMonitor(reference) if reference else None
