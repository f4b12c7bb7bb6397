"""docker-compose.yaml, the Dockerfile and .env.example agree with the code; no Docker engine needed."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
import typer
import yaml
from pydantic import SecretStr

from fraudstream.cli import app
from fraudstream.config import DEFAULT_MODEL_PATH, PACKAGE_DIR, Settings
from fraudstream.infra.kafka import internal_topics
from fraudstream.infra.topics import min_insync_replicas, topic_specs

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yaml"
COMPOSE_SCHEMA = ROOT.parent / "shared" / "schemas" / "compose-spec.json"
VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")
REFERENCE_ONLY = re.compile(r"^\$\{\w+(?::?[-?][^}]*)?\}$")
SECRET_NAME = re.compile(r"USER|PASSWORD|SECRET|SASL")
SECRETS_DIR = "/run/secrets/"
COMPONENTS = ("topics", "migrate", "detector", "sink", "ui")
# The settings of the `cluster` profile, as .env.example's comment gives them.
CLUSTER_ENV = {
    "FRAUDSTREAM_KAFKA_BROKERS": "3",
    "FRAUDSTREAM_KAFKA_BOOTSTRAP_SERVERS": "kafka-1:19092,kafka-2:19092,kafka-3:19092",
    "FRAUDSTREAM_TOPIC_REPLICATION_FACTOR": "3",
}


def content_lines(path: Path) -> list[str]:
    """The lines of ``path`` that are neither blank nor comments."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def read_dotenv(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in content_lines(path))


def interpolate(value: object, variables: dict[str, str]) -> str:
    """What docker compose makes of a value, given the variables of .env."""
    return VARIABLE.sub(lambda match: variables[match.group(1)], str(value)).replace("$$", "$")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    instructions = [line.partition(" ") for line in lines if line and not line.startswith("#")]
    return [(keyword.upper(), arguments.strip()) for keyword, _, arguments in instructions]


def advertised_listeners(kafka: dict) -> dict[str, str]:
    """The broker's advertised addresses by listener name."""
    listeners = kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
    return dict(listener.split("://") for listener in listeners)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


@pytest.fixture(scope="module")
def project_services(services: dict[str, dict]) -> dict[str, dict]:
    """The services built from this repository's Dockerfile (MLflow's image is built from docker/)."""
    return {name: service for name, service in services.items() if service.get("build") == "."}


@pytest.fixture(scope="module")
def dotenv() -> dict[str, str]:
    return read_dotenv(ROOT / ".env.example")


def clear_settings_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in os.environ if name.startswith("FRAUDSTREAM_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def defaults(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The code's default settings, whatever FRAUDSTREAM_* variables this shell has."""
    clear_settings_environment(monkeypatch)
    return Settings()


def secret_files(service: dict, compose: dict, dotenv: dict[str, str], folder: Path) -> dict[str, str]:
    """``service``'s environment as its container sees it: each /run/secrets/<name> a file in ``folder``
    holding the value .env gives that secret."""
    mounted = set(service.get("secrets", []))
    environment = {}
    for name, value in service["environment"].items():
        value = interpolate(value, dotenv)
        if value.startswith(SECRETS_DIR):
            secret = value.removeprefix(SECRETS_DIR)
            assert secret in mounted, (name, secret)
            path = folder / secret
            path.write_text(dotenv[compose["secrets"][secret]["environment"]] + "\n")
            value = str(path)
        environment[name] = value
    return environment


def settings_of(
    service: dict, dotenv: dict[str, str], monkeypatch: pytest.MonkeyPatch, compose: dict, folder: Path
) -> Settings:
    """The Settings a container of ``service`` builds from its environment and its secrets."""
    with monkeypatch.context() as patch:
        clear_settings_environment(patch)
        for name, value in secret_files(service, compose, dotenv, folder).items():
            patch.setenv(name, value)
        return Settings()


def test_compose_file_follows_the_compose_specification(compose: dict) -> None:
    if not COMPOSE_SCHEMA.exists():
        pytest.skip(f"{COMPOSE_SCHEMA} is not available")
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    jsonschema.Draft7Validator(schema).validate(compose)


def test_each_component_runs_as_a_fraudstream_subcommand(project_services: dict[str, dict]) -> None:
    subcommands = typer.main.get_command(app).commands
    commands = {name: service["command"] for name, service in project_services.items()}
    assert all(command[0] in subcommands for command in commands.values()), commands
    assert sorted(command[0] for command in commands.values()) == sorted(COMPONENTS)


def test_fraudstream_variables_are_settings_fields(dotenv: dict[str, str]) -> None:
    fields = {f"FRAUDSTREAM_{name.upper()}" for name in Settings.model_fields}
    files = {f"{field}_FILE" for field in fields if field.endswith("_PASSWORD")}
    used = set(re.findall(r"\bFRAUDSTREAM_\w+", COMPOSE_FILE.read_text()))
    used |= {name for name in dotenv if name.startswith("FRAUDSTREAM_")}
    assert used - fields - files == set()


def test_project_services_reach_kafka_and_postgres_inside_the_network(
    services: dict[str, dict], project_services: dict[str, dict], dotenv: dict[str, str]
) -> None:
    kafka = services["kafka"]
    internal = advertised_listeners(kafka)[kafka["environment"]["KAFKA_INTER_BROKER_LISTENER_NAME"]]
    assert dotenv["FRAUDSTREAM_KAFKA_BOOTSTRAP_SERVERS"] == internal
    for name, service in project_services.items():
        environment = service["environment"]
        assert interpolate(environment["FRAUDSTREAM_KAFKA_BOOTSTRAP_SERVERS"], dotenv) == internal, name
        assert services[environment["FRAUDSTREAM_PG_HOST"]]["image"].startswith("postgres:16"), name
        for setting in ("FRAUDSTREAM_PG_USER", "FRAUDSTREAM_PG_DATABASE"):
            assert setting in environment, (name, setting)
    assert (
        interpolate(services["kafka-ui"]["environment"]["KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS"], dotenv)
        == internal
    )


def test_host_clients_reach_kafka_with_the_default_bootstrap_servers(
    services: dict[str, dict], defaults: Settings
) -> None:
    kafka = services["kafka"]
    assert advertised_listeners(kafka)["HOST"] == defaults.kafka_bootstrap_servers
    port = defaults.kafka_bootstrap_servers.rpartition(":")[2]
    assert f"{port}:{port}" in kafka["ports"]


def kafka_settings(kafka: dict) -> dict[str, str]:
    """A broker's server properties its KAFKA_* variables set (the image's own convention)."""
    return {
        name.removeprefix("KAFKA_").lower().replace("_", "."): str(value)
        for name, value in kafka["environment"].items()
        if name.startswith("KAFKA_")
    }


def test_the_single_broker_replicates_kafkas_own_topics_as_local_mode_does(services: dict[str, dict]) -> None:
    kafka = services["kafka"]
    assert kafka["profiles"] == ["single"]
    assert internal_topics(1).items() <= kafka_settings(kafka).items()


def test_the_cluster_profile_is_the_local_three_broker_cluster(
    services: dict[str, dict], dotenv: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three voters, each broker and controller with its own id, volume and host port; Kafka's own topics
    and the project's replicated as local mode replicates them; .env.example says how to switch."""
    nodes = [services[f"kafka-{n}"] for n in (1, 2, 3)]
    comment = (ROOT / ".env.example").read_text()
    for name, value in CLUSTER_ENV.items():
        assert f"{name}={value}" in comment, name
    assert "COMPOSE_PROFILES=cluster" in comment and dotenv["COMPOSE_PROFILES"] == "single"
    voters = ",".join(f"{n}@kafka-{n}:9093" for n in (1, 2, 3))
    clients = [advertised_listeners(node) for node in nodes]
    assert (
        ",".join(listeners["INTERNAL"] for listeners in clients)
        == CLUSTER_ENV["FRAUDSTREAM_KAFKA_BOOTSTRAP_SERVERS"]
    )
    with monkeypatch.context() as patch:
        clear_settings_environment(patch)
        host = Settings(kafka_brokers=3)
        patch.setattr(os, "environ", {**os.environ, **CLUSTER_ENV})
        inside = Settings()
    assert ",".join(listeners["HOST"] for listeners in clients) == host.kafka_bootstrap_servers
    assert (inside.topic_replication_factor, min_insync_replicas(inside)) == (3, 2)
    for number, node in enumerate(nodes, start=1):
        properties = kafka_settings(node)
        assert node["profiles"] == ["cluster"]
        assert (properties["node.id"], properties["controller.quorum.voters"]) == (str(number), voters)
        assert internal_topics(3).items() <= properties.items()
        port = clients[number - 1]["HOST"].rpartition(":")[2]
        assert node["ports"] == [f"{port}:9092"]
        assert node["volumes"] == [f"kafkadata{number}:/var/lib/kafka/data"]


def _revealed(user: str, password: SecretStr) -> tuple[str, str]:
    return user, password.get_secret_value()


def test_postgres_is_created_with_the_credentials_the_services_use(
    compose: dict,
    services: dict[str, dict],
    project_services: dict[str, dict],
    dotenv: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    postgres = secret_files(services["postgres"], compose, dotenv, tmp_path)
    owner = (postgres["POSTGRES_USER"], Path(postgres["POSTGRES_PASSWORD_FILE"]).read_text().strip())
    assert postgres["POSTGRES_DB"] == "fraud"
    migrate = settings_of(project_services["migrate"], dotenv, monkeypatch, compose, tmp_path)
    sink = settings_of(project_services["sink"], dotenv, monkeypatch, compose, tmp_path)
    interface = settings_of(project_services["interface"], dotenv, monkeypatch, compose, tmp_path)
    writer, reader = _revealed(*migrate.pg_writer), _revealed(*migrate.pg_reader)
    assert _revealed(migrate.pg_user, migrate.pg_password) == owner
    assert _revealed(sink.pg_user, sink.pg_password) == writer  # the INSERT-only role migrate creates
    assert _revealed(*interface.pg_reader) == reader  # the read-only role migrate creates
    assert len({owner[1], writer[1], reader[1]}) == 3
    for settings in (migrate, sink, interface):
        assert settings.pg_database == postgres["POSTGRES_DB"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_each_secret_is_mounted_only_where_it_is_used(compose: dict, services: dict[str, dict]) -> None:
    for name, service in services.items():
        named = {
            value.removeprefix(SECRETS_DIR)
            for value in service.get("environment", {}).values()
            if str(value).startswith(SECRETS_DIR)
        }
        assert set(service.get("secrets", [])) == named, name
    used = {secret for service in services.values() for secret in service.get("secrets", [])}
    assert used == set(compose["secrets"])


def test_secrets_come_from_env_and_no_password_is_a_plain_variable(
    compose: dict, services: dict[str, dict], dotenv: dict[str, str]
) -> None:
    for secret in compose["secrets"].values():
        assert set(secret) == {"environment"} and secret["environment"] in dotenv
    for name, service in services.items():
        assert not [key for key in service.get("environment", {}) if key.endswith("PASSWORD")], name


def test_topics_service_creates_the_topics_the_detector_and_sink_use(
    compose: dict,
    project_services: dict[str, dict],
    dotenv: dict[str, str],
    defaults: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    created = settings_of(project_services["topics"], dotenv, monkeypatch, compose, tmp_path)
    assert (created.topic_partitions, created.topic_replication_factor) == (3, 1)
    expected = topic_specs(created)
    assert [spec.name for spec in expected] == [spec.name for spec in topic_specs(defaults)]
    for name in ("detector", "sink", "interface"):
        settings = settings_of(project_services[name], dotenv, monkeypatch, compose, tmp_path)
        assert topic_specs(settings) == expected, name


def test_healthchecks_probe_the_ports_the_services_serve(
    project_services: dict[str, dict], defaults: Settings
) -> None:
    probes = {
        "detector": f"http://localhost:{defaults.detector_metrics_port}/healthz",
        "sink": f"http://localhost:{defaults.sink_metrics_port}/healthz",
        "interface": f"http://localhost:{defaults.ui_port}/_stcore/health",
    }
    for name, url in probes.items():
        test = project_services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        assert f"urllib.request.urlopen('{url}'" in test[3], name
    assert f"{defaults.ui_port}:{defaults.ui_port}" in project_services["interface"]["ports"]


def test_services_start_in_order_and_report_health(services: dict[str, dict]) -> None:
    conditions = {
        (dependency, wait["condition"])
        for service in services.values()
        for dependency, wait in service.get("depends_on", {}).items()
    }
    one_shot = {name for name, condition in conditions if condition == "service_completed_successfully"}
    assert one_shot == {"topics", "migrate"}
    for dependency, condition in conditions:
        if condition == "service_healthy":
            assert "healthcheck" in services[dependency], dependency
    for name, service in services.items():
        if name in one_shot:
            assert "restart" not in service, f"{name} must exit for its dependents to start"
        else:
            assert "healthcheck" in service and service["restart"] == "unless-stopped", name


def test_detector_scales_to_several_replicas(services: dict[str, dict]) -> None:
    detector = services["detector"]
    assert {"container_name", "hostname", "ports"} & detector.keys() == set()
    assert not any(argument.startswith("--instance") for argument in detector["command"])


def test_env_example_covers_every_variable_compose_uses(dotenv: dict[str, str]) -> None:
    assert set(VARIABLE.findall(COMPOSE_FILE.read_text())) - set(dotenv) == set()


def test_credentials_come_from_env_not_from_the_compose_file(services: dict[str, dict]) -> None:
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if key.endswith("_FILE"):
                assert str(value).startswith(SECRETS_DIR), (name, key, value)
            elif SECRET_NAME.search(key):
                assert REFERENCE_ONLY.match(str(value)), (name, key, value)


def test_env_stays_out_of_git_and_of_the_image() -> None:
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    dockerignore = content_lines(ROOT / ".dockerignore")
    assert dockerignore[0] == "*"
    assert "!.env" not in dockerignore


def test_image_is_built_from_pyproject_like_the_makefile_installs_it() -> None:
    assert re.search(r"pip install .*'\.\[dev\]'", (ROOT / "Makefile").read_text())
    installs = [arguments for keyword, arguments in dockerfile_instructions() if "pip install" in arguments]
    assert any(re.search(r"pip install \.$", command) for command in installs), installs
    assert "requirements" not in (ROOT / "Dockerfile").read_text()
    assert list(ROOT.glob("requirements*")) == []


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    allowed = {line[1:] for line in content_lines(ROOT / ".dockerignore") if line.startswith("!")}
    copied = [
        source
        for keyword, arguments in dockerfile_instructions()
        if keyword == "COPY" and not arguments.startswith("--from")
        for source in arguments.split()[:-1]
    ]
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert {"pyproject.toml", readme, "src"} <= set(copied)
    for source in copied:
        assert source in allowed and (ROOT / source).exists(), source


def test_image_runs_fraudstream_unprivileged_on_python_slim() -> None:
    instructions = dockerfile_instructions()
    stages = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert stages == ["python:3.11-slim AS builder", "python:3.11-slim"]
    runtime = instructions[[keyword for keyword, _ in instructions].index("FROM", 1) :]
    assert ("COPY", "--from=builder /opt/venv /opt/venv") in runtime
    users = [arguments for keyword, arguments in runtime if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("ENTRYPOINT", '["fraudstream"]') in runtime


def test_image_ships_the_default_model() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert f"{DEFAULT_MODEL_PATH.relative_to(PACKAGE_DIR).as_posix()}/*" in package_data["fraudstream"]


def test_mlflow_serves_the_registry_the_services_are_given(
    services: dict[str, dict], project_services: dict[str, dict], defaults: Settings
) -> None:
    mlflow = services["mlflow"]
    assert "--workers=1" in mlflow["command"]
    assert f"{defaults.mlflow_port}:5000" in mlflow["ports"]
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg://postgres:")
    assert (ROOT / "docker" / "postgres-init" / "10-mlflow.sql").read_text().count(
        "CREATE DATABASE mlflow"
    ) == 1
    for name, service in project_services.items():
        assert service["environment"]["FRAUDSTREAM_MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
    assert services["detector"]["depends_on"]["mlflow"]["condition"] == "service_healthy"
