"""Settings for every component, read from environment variables.

Every field is read from ``FRAUDSTREAM_<FIELD NAME>`` (for example ``FRAUDSTREAM_KAFKA_BOOTSTRAP_SERVERS``),
the same names in local mode and in docker-compose. The defaults are the local mode's.

A password (a field named ``*_password``) can instead be read from the file that
``FRAUDSTREAM_<FIELD NAME>_FILE`` names, as docker secrets are mounted; setting both is an error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlencode

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_PATH = PACKAGE_DIR / "ml" / "default_model"


class Settings(BaseSettings):
    """All configuration of fraudstream; one object passed to the components that need it."""

    model_config = SettingsConfigDict(env_prefix="FRAUDSTREAM_", extra="ignore", frozen=True)

    # Kafka
    kafka_brokers: int = Field(
        1, ge=1, description="brokers of the local cluster of `up`/`run` (3: a replicated cluster)"
    )
    kafka_bootstrap_servers: str = Field(
        "localhost:9092",
        description="Kafka brokers, host:port[,host:port]; one address and kafka_brokers N: "
        "the local cluster's N addresses, ports 2 apart (9092, 9094, 9096)",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = Field(None, description="e.g. PLAIN, SCRAM-SHA-512")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle for SSL/SASL_SSL")
    topic_transactions: str = "transactions"
    topic_scoring: str = "scoring"
    topic_rules: str = Field("rules", description="compacted topic of rule versions, key = rule id")
    topic_partitions: int = Field(3, ge=1)
    topic_replication_factor: int | None = Field(
        None, ge=1, description="unset: 3 on a cluster of 3 or more brokers (kafka_brokers), else that many"
    )
    topic_retention_ms: int = Field(7 * 24 * 3600 * 1000, description="retention of the data topics")
    detector_group: str = "fraudstream-detector"
    sink_group: str = "fraudstream-sink"
    topic_labels: str = Field("labels", description="decisions on transactions (analysts, chargebacks)")
    labels_group: str = Field("fraudstream-labels", description="the sink's consumer of `labels`")

    # PostgreSQL
    pg_host: str = "localhost"
    pg_port: int = 5432
    pg_user: str = "fraud"
    pg_password: SecretStr = SecretStr("fraud")
    pg_database: str = "fraud"
    pg_reader_user: str = Field("fraud_reader", description="read-only role the UI connects as")
    pg_reader_password: SecretStr = SecretStr("fraud_reader")
    pg_writer_user: str = Field("fraud_writer", description="the sink's role: SELECT, INSERT on its tables")
    pg_writer_password: SecretStr | None = Field(
        None, description="`migrate` creates the sink's role only when this is set"
    )
    pg_sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None = Field(
        None, description="libpq's sslmode for every PostgreSQL client (unset: asyncpg's default, prefer)"
    )
    pg_sslrootcert: Path | None = Field(None, description="CA file the server's certificate is checked with")
    retention_days: int = Field(
        90, ge=1, description="days of scores kept: older daily partitions of fraud_scores are dropped"
    )

    # Model and scoring
    model_path: Path = Field(DEFAULT_MODEL_PATH, description="CatBoost .cbm file or a model directory")
    threshold: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="fraud_flag = score > threshold; unset: the model's own (0.5 for a bare .cbm)",
    )
    explain_min_score: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="scores from here up carry their top-3 SHAP reasons (0 = all); unset: the threshold",
    )

    # Model registry (MLflow) and the model's life in production
    mlflow_tracking_uri: str = Field(
        "http://127.0.0.1:5000",
        description="MLflow tracking server and registry; '' = no registry: serve model_path",
    )
    mlflow_port: int = Field(5000, description="port of the local MLflow server of `fraudstream up`")
    mlflow_venv: Path = Field(Path(".venv-mlflow"), description="virtualenv of the local MLflow server")
    quix_venv: Path = Field(Path(".venv-quix"), description="virtualenv of the bench's Quix Streams peer")
    registered_model: str = Field("fraudstream", description="registered model whose aliases serve")
    model_poll_s: float = Field(2.0, gt=0, description="how often the detector resolves the aliases")
    psi_warning: float = Field(0.2, gt=0, description="a PSI above this is drift worth a warning")
    label_maturity_days: int = Field(
        30, ge=0, description="`train --from-db`: an unlabelled transaction this old counts as legitimate"
    )
    # Detector micro-batches
    batch_max_messages: int = Field(5000, ge=1)
    batch_timeout_ms: int = Field(100, ge=1, description="how long an idle detector waits for a message")
    batch_linger_ms: int = Field(
        20, ge=0, description="after a batch's first message, how long the detector waits for more"
    )
    # With fetch_min_bytes 1 the broker answers as soon as anything arrives: the wait bounds only how often
    # an idle consumer asks again, so a long one costs no latency and spares the broker idle requests.
    fetch_wait_max_ms: int = Field(
        500,
        ge=1,
        description="how long the broker holds a fetch of the detector or the sink that finds nothing new",
    )
    fetch_min_bytes: int = Field(
        1,
        ge=1,
        description="the broker answers a detector's fetch once it has this much (or the wait is over)",
    )

    # Review and live quality
    alert_budget: int = Field(
        100, ge=1, description="alerts the analysts can review per day; k of precision@k"
    )

    # Local mode
    data_dir: Path = Field(Path(".data"), description="Kafka and PostgreSQL data of `fraudstream up`")
    cache_dir: Path = Field(Path(".cache"), description="Kafka jars resolved from Maven Central")
    log_dir: Path = Field(Path("logs"), description="service logs, one file per service")
    ui_port: int = 8501
    ui_auth: bool = Field(False, description="the interface asks for a login (on with --secure)")
    ui_session_idle_hours: float = Field(8.0, gt=0, description="a login expires after this long idle")
    detector_metrics_port: int = 9101
    sink_metrics_port: int = 9102

    @model_validator(mode="before")
    @classmethod
    def _local_cluster(cls, data: Any) -> Any:
        """A local cluster of ``kafka_brokers`` nodes: every node's address, and replication to match."""
        if not isinstance(data, dict):
            return data
        brokers = int(data.get("kafka_brokers", 1))
        bootstrap = data.get("kafka_bootstrap_servers", cls.model_fields["kafka_bootstrap_servers"].default)
        if brokers > 1 and "," not in bootstrap:
            data = {**data, "kafka_bootstrap_servers": ",".join(cluster_addresses(bootstrap, brokers))}
        if data.get("topic_replication_factor") is None:
            data = {**data, "topic_replication_factor": min(brokers, 3)}
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, SecretFiles(settings_cls), dotenv_settings, file_secret_settings

    @property
    def pg_dsn(self) -> str:
        """The connection string, password included: pass it to a connection, never print it."""
        password = _plain(self.pg_password)
        options = {"sslmode": self.pg_sslmode, "sslrootcert": self.pg_sslrootcert}
        query = urlencode({key: str(value) for key, value in options.items() if value is not None})
        return (
            f"postgresql://{quote(self.pg_user, safe='')}:{quote(password, safe='')}"
            f"@{self.pg_host}:{self.pg_port}/{self.pg_database}{'?' + query if query else ''}"
        )

    @property
    def pg_address(self) -> str:
        """Where the database is, without credentials: what may be printed and logged."""
        return f"{self.pg_user}@{self.pg_host}:{self.pg_port}/{self.pg_database}"

    @property
    def pg_reader(self) -> tuple[str, SecretStr]:
        """The read-only role the UI connects as: (user, password)."""
        return self.pg_reader_user, self.pg_reader_password

    @property
    def pg_writer(self) -> tuple[str, SecretStr] | None:
        """The sink's role, (user, password), when its password is set."""
        if self.pg_writer_password is None:
            return None
        return self.pg_writer_user, self.pg_writer_password

    @property
    def pg_reader_dsn(self) -> str:
        return self.model_copy(
            update={"pg_user": self.pg_reader_user, "pg_password": self.pg_reader_password}
        ).pg_dsn

    @property
    def registry_configured(self) -> bool:
        return bool(self.mlflow_tracking_uri)

    @property
    def dlq_transactions(self) -> str:
        return f"{self.topic_transactions}.dlq"

    @property
    def dlq_scoring(self) -> str:
        return f"{self.topic_scoring}.dlq"

    @property
    def topic_state(self) -> str:
        """The detector's compacted changelog of per-customer feature state."""
        return f"{self.detector_group}-state-changelog"

    @property
    def dlq_labels(self) -> str:
        return f"{self.topic_labels}.dlq"

    def scoped(self, prefix: str) -> Settings:
        """A copy with topics and consumer groups of its own, for benchmarks and tests on a shared broker."""
        return self.model_copy(
            update={
                "topic_transactions": f"{prefix}.transactions",
                "topic_scoring": f"{prefix}.scoring",
                "topic_rules": f"{prefix}.rules",
                "detector_group": f"{prefix}-detector",
                "sink_group": f"{prefix}-sink",
                "topic_labels": f"{prefix}.labels",
                "labels_group": f"{prefix}-labels",
            }
        )

    def with_brokers(self, brokers: int) -> Settings:
        """These settings for a local cluster of ``brokers`` nodes from the first bootstrap address on,
        replication derived again (``_local_cluster``)."""
        first = self.kafka_bootstrap_servers.split(",")[0]
        return type(self).model_validate(
            {
                **self.model_dump(),
                "kafka_brokers": brokers,
                "kafka_bootstrap_servers": first,
                "topic_replication_factor": None,
            }
        )

    def environment(self) -> dict[str, str]:
        """These settings as the environment variables that reproduce them in another process."""
        prefix = self.model_config["env_prefix"]
        return {
            f"{prefix}{name.upper()}": _plain(value)
            for name, value in self.model_dump().items()
            if value is not None
        }


def cluster_addresses(first: str, brokers: int) -> list[str]:
    """The addresses of a local cluster whose first node listens on ``first`` (host:port): each node
    takes two ports, its client listener and its KRaft controller's."""
    host, _, port = first.rpartition(":")
    return [f"{host}:{int(port) + 2 * node}" for node in range(brokers)]


def _plain(value: object) -> str:
    """A setting's value as its environment variable holds it: secrets revealed, for a child process."""
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


class SecretFiles(PydanticBaseSettingsSource):
    """Passwords read from the files that ``FRAUDSTREAM_<NAME>_FILE`` variables name (docker secrets).

    A trailing newline is dropped. A variable naming a missing file, or set together with the plain
    ``FRAUDSTREAM_<NAME>`` variable, is an error that says which.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        prefix = self.config.get("env_prefix", "")
        values = {}
        for name in self.settings_cls.model_fields:
            variable = f"{prefix}{name.upper()}"
            path = os.environ.get(f"{variable}_FILE")
            if not name.endswith("_password") or path is None:
                continue
            if variable in os.environ:
                raise ValueError(f"{variable} and {variable}_FILE are both set: set one of them")
            try:
                values[name] = Path(path).read_text().rstrip("\r\n")
            except OSError as error:
                raise ValueError(f"{variable}_FILE: cannot read {path}: {error.strerror}") from None
        return values
