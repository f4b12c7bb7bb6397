"""The model registry: MLflow's, through its client (``mlflow-skinny``) only.

A registered version's artifacts are the model directory (``model.cbm``, ``metadata.json`` with the
features, threshold, training period and reference distributions; the training report where there is
one), logged to a run of the experiment ``fraudstream``. Its tags repeat what is worth seeing in MLflow's
UI and the sha256 of ``model.cbm``, which a loader checks before a version may serve.

Aliases decide what serves: ``champion`` scores and decides, ``challenger`` is scored in shadow only.
Every change of ``champion`` is appended to the registered model's tag ``champion_history``, so
``rollback`` knows the previous champion.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fraudstream.errors import FraudstreamError
from fraudstream.ml.model import METADATA_FILE, MODEL_FILE, FraudModel

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
EXPERIMENT = "fraudstream"
HISTORY_TAG = "champion_history"
HISTORY_KEPT = 50  # promotions kept in the tag (MLflow caps a tag's value at a few thousand characters)


class RegistryError(FraudstreamError):
    """The registry refused or lacks something (no such version, no alias, a model that fails checks)."""


class RegistryUnreachable(RegistryError):
    """The tracking server did not answer."""

    retriable = True


@dataclass(frozen=True)
class Version:
    """One registered version, as listed: its number, aliases, tags and where it came from."""

    name: str
    number: int
    aliases: tuple[str, ...]
    tags: dict[str, str]
    run_id: str | None
    created_at: datetime

    @property
    def label(self) -> str:
        """What score messages and rows carry as ``model_version``: ``fraudstream/3``."""
        return f"{self.name}/{self.number}"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Registry:
    """The registered model ``name`` on the tracking server at ``tracking_uri``."""

    def __init__(self, tracking_uri: str, name: str, request_timeout_s: int = 10, retries: int = 1) -> None:
        # The client's defaults retry a dead server for minutes; a detector polling it needs an answer.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(request_timeout_s))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(retries))
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.name = name
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    # -- registering -------------------------------------------------------------------------------

    def register(self, model_dir: Path, run_id: str | None = None, description: str = "") -> Version:
        """A new version from a model directory, logged to the run ``run_id`` (or a new run)."""
        model_dir = Path(model_dir)
        metadata = json.loads((model_dir / METADATA_FILE).read_text())
        with _translated():
            self._ensure_registered_model()
            if run_id is None:
                run_id = self.start_run(f"register {metadata.get('version', model_dir.name)}")
                self.client.set_terminated(run_id)
            self.client.log_artifacts(run_id, str(model_dir), "model")
            source = f"{self.client.get_run(run_id).info.artifact_uri}/model"
            created = self.client.create_model_version(
                self.name,
                source,
                run_id=run_id,
                tags=version_tags(model_dir, metadata),
                description=description,
            )
        logger.info("registered %s/%s from %s", self.name, created.version, model_dir)
        return self.version(int(created.version))

    def start_run(self, run_name: str) -> str:
        """A run of the experiment ``fraudstream`` (created on first use); its id."""
        with _translated():
            experiment = self.client.get_experiment_by_name(EXPERIMENT)
            experiment_id = (
                experiment.experiment_id if experiment else self.client.create_experiment(EXPERIMENT)
            )
            return self.client.create_run(experiment_id, run_name=run_name).info.run_id

    def _ensure_registered_model(self) -> None:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.name)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.client.create_registered_model(self.name, description="fraudstream's fraud model")

    # -- reading -----------------------------------------------------------------------------------

    def versions(self) -> list[Version]:
        """Every version, newest first."""
        with _translated():
            found = self.client.search_model_versions(f"name = '{self.name}'", max_results=1000)
            details = [self.client.get_model_version(self.name, item.version) for item in found]
        return sorted((_version(item) for item in details), key=lambda v: -v.number)

    def version(self, number: int) -> Version:
        with _translated():
            return _version(self.client.get_model_version(self.name, str(number)))

    def alias(self, alias: str) -> Version | None:
        """The version an alias points at, or None when the alias is not set."""
        from mlflow.exceptions import MlflowException

        with _translated():
            try:
                return _version(self.client.get_model_version_by_alias(self.name, alias))
            except MlflowException as error:
                if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                    return None
                raise

    def history(self) -> list[dict[str, Any]]:
        """Past and present champions, oldest first: ``{"version", "at", "previous"}``."""
        from mlflow.exceptions import MlflowException

        with _translated():
            try:
                tags = self.client.get_registered_model(self.name).tags
            except MlflowException as error:
                if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return []
                raise
        return json.loads(tags.get(HISTORY_TAG, "[]"))

    # -- aliases -----------------------------------------------------------------------------------

    def set_champion(self, number: int) -> int | None:
        """Point ``champion`` at version ``number`` and record it; the previous champion's number."""
        self.version(number)  # raises if there is no such version
        current = self.alias(CHAMPION)
        previous = None if current is None else current.number
        history = [*self.history(), {"version": number, "previous": previous, "at": _now()}]
        with _translated():
            self.client.set_registered_model_alias(self.name, CHAMPION, str(number))
            self.client.set_registered_model_tag(self.name, HISTORY_TAG, json.dumps(history[-HISTORY_KEPT:]))
            if (challenger := self.alias(CHALLENGER)) is not None and challenger.number == number:
                self.client.delete_registered_model_alias(self.name, CHALLENGER)
        return previous

    def set_challenger(self, number: int | None) -> None:
        """Point ``challenger`` at version ``number``; None removes it (no shadow scoring)."""
        with _translated():
            if number is None:
                if self.alias(CHALLENGER) is not None:
                    self.client.delete_registered_model_alias(self.name, CHALLENGER)
                return
            self.version(number)
            self.client.set_registered_model_alias(self.name, CHALLENGER, str(number))

    def previous_champion(self) -> int | None:
        """The champion before the current one, from the promotion history."""
        history = self.history()
        return history[-1]["previous"] if history else None

    # -- loading -----------------------------------------------------------------------------------

    def download(self, version: Version, cache_dir: Path) -> Path:
        """The version's model directory, downloaded once into ``cache_dir`` and checked against its hash."""
        target = Path(cache_dir) / f"{self.name}-{version.number}"
        if not target.exists():
            if version.run_id is None:
                raise RegistryError(f"{version.label} has no run to download its artifacts from")
            import mlflow.artifacts

            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache_dir))
            try:
                with _translated():
                    mlflow.artifacts.download_artifacts(
                        run_id=version.run_id,
                        artifact_path="model",
                        dst_path=str(staging),
                        tracking_uri=self.tracking_uri,
                    )
                (staging / "model").rename(target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        expected = version.tags.get("sha256")
        if expected is None or file_sha256(target / MODEL_FILE) != expected:
            shutil.rmtree(target, ignore_errors=True)
            raise RegistryError(f"{version.label}: model.cbm does not match the sha256 registered with it")
        return target


def version_tags(model_dir: Path, metadata: Mapping[str, Any]) -> dict[str, str]:
    """What MLflow's UI shows of a version; the reference distributions stay in ``metadata.json``."""
    data = metadata.get("data", {})
    tags = {
        "sha256": file_sha256(model_dir / MODEL_FILE),
        "model_id": str(metadata.get("version", "")),
        "threshold": str(metadata.get("threshold", 0.5)),
        "features": json.dumps(metadata.get("features", [])),
        "training_period": f"{data.get('time_min', '?')} .. {data.get('time_max', '?')}"
        if data
        else "unknown",
        "has_reference": str("reference" in metadata).lower(),
    }
    if "metrics" in metadata:
        tags["validation_pr_auc"] = str(metadata["metrics"].get("pr_auc"))
    return tags


def model_dir_from_cbm(cbm: Path, out_dir: Path) -> Path:
    """A model directory for a bare CatBoost file: the file and the metadata it implies."""
    model = FraudModel.load(cbm)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cbm, out_dir / MODEL_FILE)
    metadata = {
        "version": model.version,
        "created_at": _now(),
        "source": str(cbm),
        "features": model.feature_names,
        "cat_features": model.cat_features,
        "threshold": model.threshold,
    }
    (out_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return out_dir


def _version(item: Any) -> Version:
    return Version(
        name=item.name,
        number=int(item.version),
        aliases=tuple(getattr(item, "aliases", []) or []),
        tags=dict(item.tags or {}),
        run_id=item.run_id or None,
        created_at=datetime.fromtimestamp(item.creation_timestamp / 1000, UTC),
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class _translated:
    """Turns the client's connection failures into ``RegistryUnreachable`` (a one-line message)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _: object) -> bool:
        if error is None or isinstance(error, RegistryError):
            return False
        from mlflow.exceptions import MlflowException

        text = str(error)
        if isinstance(error, OSError) or (
            isinstance(error, MlflowException) and ("Max retries" in text or "Connection" in text)
        ):
            raise RegistryUnreachable(f"model registry unreachable: {text.splitlines()[0][:200]}") from error
        return False
