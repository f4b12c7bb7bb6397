"""Shared fixtures: the seed's files, and a real Kafka + PostgreSQL stack for integration tests."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fraudstream.config import Settings
from fraudstream.infra.process import free_port
from fraudstream.infra.stack import LocalStack
from fraudstream.ops.supervisor import ServiceProcess
from tests.helpers import admin, running_pipeline

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SEED = SHARED / "seed"


def shared_file(*parts: str) -> Path:
    """A file of ../shared, or a clean skip where that folder is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


@pytest.fixture(scope="session")
def new_small() -> Path:
    return shared_file("seed", "new_small.csv")


@pytest.fixture(scope="session")
def seed_model() -> Path:
    return shared_file("seed", "my_model.cbm")


@contextmanager
def local_stack(prefix: str, brokers: int = 1) -> Iterator[Settings]:
    """Real Kafka (``brokers`` nodes) and PostgreSQL on free ports, data in a temporary folder, stopped
    and removed on exit."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)  # PostgreSQL runs as its own user and must reach its data folder
    settings = Settings(
        # Each node's port and its KRaft controller's.
        kafka_bootstrap_servers=f"127.0.0.1:{free_port(following=2 * brokers - 1)}",
        kafka_brokers=brokers,
        pg_port=free_port(),
        data_dir=root / "data",
        log_dir=root / "logs",
        cache_dir=Path(__file__).resolve().parents[1] / ".cache",
        batch_timeout_ms=20,
        mlflow_tracking_uri="",  # no registry: the detector serves model_path (tests/lifecycle start one)
    )
    stack = LocalStack.from_settings(settings)
    try:
        stack.up()
        yield settings
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def stack_settings() -> Iterator[Settings]:
    """The session's stack (``local_stack``)."""
    with local_stack("fraudstream-test-") as settings:
        yield settings


@pytest.fixture
def database(stack_settings: Settings) -> Iterator[Settings]:
    """A database of its own on the session's PostgreSQL, with no migration applied, dropped after."""
    name = f"test_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(stack_settings, f"CREATE DATABASE {name}"))
    try:
        yield stack_settings.model_copy(update={"pg_database": name})
    finally:
        asyncio.run(admin(stack_settings, f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def stack(stack_settings: Settings) -> LocalStack:
    return LocalStack.from_settings(stack_settings)


@pytest.fixture(scope="session")
def services(stack_settings: Settings) -> Iterator[dict[str, ServiceProcess]]:
    """A detector and a sink running as real processes against the session's stack."""
    with running_pipeline(stack_settings) as running:
        yield running
