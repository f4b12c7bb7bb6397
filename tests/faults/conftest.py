"""The fault tests' pipeline: a detector and a sink on the topics of the module's ``scoped`` fixture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fraudstream.config import Settings
from fraudstream.ops.supervisor import ServiceProcess
from tests.helpers import running_pipeline


@pytest.fixture
def pipeline(scoped: Settings) -> Iterator[dict[str, ServiceProcess]]:
    with running_pipeline(scoped, instance="fault-0") as services:
        yield services
