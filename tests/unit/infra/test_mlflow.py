"""The local MLflow server's configuration: its own database, psycopg 3, started only when used."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudstream.config import Settings
from fraudstream.infra.mlflow import MlflowServer
from fraudstream.infra.process import InfraError
from fraudstream.infra.stack import local_mlflow


def test_the_backend_store_is_the_mlflow_database_through_psycopg3():
    server = MlflowServer(Path(".venv-mlflow"), Path(".data"), "postgresql://fraud:pw@127.0.0.1:5433/fraud")
    assert server.backend_store_uri == "postgresql+psycopg://fraud:pw@127.0.0.1:5433/mlflow"
    assert server.tracking_uri == "http://127.0.0.1:5000"
    assert server.artifacts_dir == Path(".data/mlflow-artifacts").resolve()


def test_the_stack_starts_mlflow_only_when_the_clients_point_at_the_local_server():
    assert local_mlflow(Settings(mlflow_tracking_uri="http://127.0.0.1:5000")) is not None
    assert local_mlflow(Settings(mlflow_tracking_uri="http://localhost:5001", mlflow_port=5001)).port == 5001
    assert local_mlflow(Settings(mlflow_tracking_uri="")) is None
    assert local_mlflow(Settings(mlflow_tracking_uri="http://mlflow.internal:5000")) is None


def test_a_missing_server_virtualenv_is_a_clear_error(tmp_path: Path):
    server = MlflowServer(tmp_path / "no-venv", tmp_path, "postgresql://fraud:pw@127.0.0.1:1/fraud", port=1)
    with pytest.raises(InfraError, match="make mlflow-server"):
        server.start(timeout=1)


def test_the_backend_store_keeps_the_connections_tls_options():
    dsn = "postgresql://fraud:p%40w@127.0.0.1:5432/fraud?sslmode=verify-full&sslrootcert=/d/tls/ca.pem"
    server = MlflowServer(Path(".venv-mlflow"), Path(".data"), dsn)

    assert server.backend_store_uri == (
        "postgresql+psycopg://fraud:p%40w@127.0.0.1:5432/mlflow?sslmode=verify-full&sslrootcert=/d/tls/ca.pem"
    )
