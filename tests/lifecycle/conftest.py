"""A real MLflow tracking server for the model-lifecycle tests, on the session's PostgreSQL.

One server for the whole session (it takes ~25 s to start on this machine), from the server's own
virtualenv ``.venv-mlflow`` (``make mlflow-server``; ``make test`` creates it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fraudstream.config import Settings
from fraudstream.infra.mlflow import MlflowServer
from fraudstream.infra.process import free_port
from fraudstream.ml.registry import Registry
from fraudstream.ml.training import train_model
from tests.conftest import local_stack
from tests.unit.transactions import synthetic

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[Settings]:
    """A stack of the lifecycle tests' own: their registries, scores and labels stay out of the other
    tests' tables (the review queue and live-quality tests count what is there)."""
    with local_stack("fraudstream-lifecycle-") as settings:
        yield settings


@pytest.fixture(scope="session")
def mlflow_server(stack_settings: Settings) -> Iterator[MlflowServer]:
    server = MlflowServer(
        venv=ROOT / ".venv-mlflow",
        data_dir=stack_settings.data_dir,
        pg_dsn=stack_settings.pg_dsn,
        port=free_port(),
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry_settings(stack_settings: Settings, mlflow_server: MlflowServer) -> Settings:
    """The session's stack with the registry: a registered model name of its own per session."""
    return stack_settings.model_copy(
        # one threshold for every version, so that a row's flag can be checked whichever model scored it
        update={"mlflow_tracking_uri": mlflow_server.tracking_uri, "model_poll_s": 0.5, "threshold": 0.5}
    )


@pytest.fixture
def registry(registry_settings: Settings, request: pytest.FixtureRequest) -> Registry:
    """An empty registered model of the test's own (tests share one server)."""
    name = f"fraudstream-{request.node.name[:40]}".replace("[", "-").replace("]", "")
    return Registry(registry_settings.mlflow_tracking_uri, name)


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two small models trained on synthetic data (with reference distributions): a good one and a
    weak one (few iterations, shallow), so that a comparison can tell them apart."""
    root = tmp_path_factory.mktemp("models")
    data = root / "train.csv.gz"
    synthetic(customers=60, days=60, seed=1).to_csv(data, index=False)
    good = root / "good"
    train_model(data, good, progress=False, iterations=80)
    weak = root / "weak"
    train_model(data, weak, progress=False, iterations=2)
    return {"good": good, "weak": weak, "data": data}
