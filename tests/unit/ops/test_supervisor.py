"""ServiceProcess, the one way to start a service: its port through its setting, and restarts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from fraudstream.config import Settings
from fraudstream.infra.process import free_port, wait_until
from fraudstream.ops import supervisor
from fraudstream.ops.supervisor import ServiceProcess


@pytest.mark.parametrize(("name", "setting"), list(supervisor.PORT_SETTINGS.items()))
def test_the_port_given_is_the_services_setting(name: str, setting: str, tmp_path: Path) -> None:
    port = free_port()

    service = ServiceProcess(name, Settings(log_dir=tmp_path, mlflow_tracking_uri=""), port=port)

    assert service.port == port and getattr(service.settings, setting) == port
    assert service.settings.environment()[f"FRAUDSTREAM_{setting.upper()}"] == str(port)
    assert service.output == tmp_path / f"{name}-{port}.out"


def test_a_service_that_exits_is_restarted_on_its_port(monkeypatch, tmp_path: Path) -> None:
    """A detector whose model is missing exits at start: the supervisor starts it again, same output."""
    monkeypatch.setattr(supervisor, "RESTART_DELAY_S", 0.0)
    settings = Settings(log_dir=tmp_path, model_path=tmp_path / "no-such-model.cbm", mlflow_tracking_uri="")
    detector = ServiceProcess("detector", settings, port=free_port())
    detector.start()
    first = detector.process
    wait_until(lambda: detector.exit_code() is not None, 60, "the detector's exit", detector.output)
    assert detector.exit_code() != 0

    console = io.StringIO()
    supervisor._restart_exited([detector], Console(file=console, width=200))

    assert detector.process is not first
    assert (
        f"detector exited with {first.returncode} (see {detector.output}); restarting" in console.getvalue()
    )
    wait_until(lambda: detector.exit_code() is not None, 60, "the restarted detector's exit", detector.output)
    assert detector.output.read_text().count("no-such-model.cbm") >= 2
