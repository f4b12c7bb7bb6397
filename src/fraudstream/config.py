"""Settings for every component, read from environment variables.

Every field is read from ``FRAUDSTREAM_<FIELD NAME>`` (for example ``FRAUDSTREAM_KAFKA_BOOTSTRAP_SERVERS``),
the same names in local mode and in docker-compose. The defaults are the local mode's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_PATH = PACKAGE_DIR / "ml" / "default_model"


class Settings(BaseSettings):
    """All configuration of fraudstream; one object passed to the components that need it."""

    model_config = SettingsConfigDict(env_prefix="FRAUDSTREAM_", extra="ignore", frozen=True)

    # Kafka
    kafka_bootstrap_servers: str = Field("localhost:9092", description="Kafka brokers, host:port[,host:port]")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = Field(None, description="e.g. PLAIN, SCRAM-SHA-512")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = None
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle for SSL/SASL_SSL")
    topic_transactions: str = "transactions"
    topic_scoring: str = "scoring"
    topic_partitions: int = Field(3, ge=1)
    topic_replication_factor: int = Field(1, ge=1, description="3 on a multi-broker cluster")
    topic_retention_ms: int = Field(7 * 24 * 3600 * 1000, description="retention of the data topics")
    detector_group: str = "fraudstream-detector"
    sink_group: str = "fraudstream-sink"

    # PostgreSQL
    pg_host: str = "localhost"
    pg_port: int = 5432
    pg_user: str = "fraud"
    pg_password: str = "fraud"
    pg_database: str = "fraud"
    pg_reader_user: str = Field("fraud_reader", description="read-only role the UI connects as")
    pg_reader_password: str = "fraud_reader"

    # Model and scoring
    model_path: Path = Field(DEFAULT_MODEL_PATH, description="CatBoost .cbm file or a model directory")
    threshold: float = Field(0.5, ge=0.0, le=1.0, description="fraud_flag = score > threshold")
    explain_min_score: float = Field(
        0.5, ge=0.0, le=1.0, description="scores from here up carry their top-3 SHAP reasons (0 = all)"
    )

    # Model registry (MLflow) and the model's life in production
    mlflow_tracking_uri: str = Field(
        "http://127.0.0.1:5000",
        description="MLflow tracking server and registry; '' = no registry: serve model_path",
    )
    mlflow_port: int = Field(5000, description="port of the local MLflow server of `fraudstream up`")
    mlflow_venv: Path = Field(Path(".venv-mlflow"), description="virtualenv of the local MLflow server")
    registered_model: str = Field("fraudstream", description="registered model whose aliases serve")
    model_poll_s: float = Field(2.0, gt=0, description="how often the detector resolves the aliases")
    psi_warning: float = Field(0.2, gt=0, description="a PSI above this is drift worth a warning")
    label_maturity_days: int = Field(
        30, ge=0, description="`train --from-db`: an unlabelled transaction this old counts as legitimate"
    )
    alert_budget: int = Field(
        100, ge=1, description="alerts the analysts can review per day; k of precision@k"
    )

    # Detector micro-batches
    batch_max_messages: int = Field(5000, ge=1)
    batch_timeout_ms: int = Field(100, ge=1, description="how long an idle detector waits for a message")

    # Local mode
    data_dir: Path = Field(Path(".data"), description="Kafka and PostgreSQL data of `fraudstream up`")
    cache_dir: Path = Field(Path(".cache"), description="Kafka jars resolved from Maven Central")
    log_dir: Path = Field(Path("logs"), description="service logs, one file per service")
    ui_port: int = 8501
    detector_metrics_port: int = 9101
    sink_metrics_port: int = 9102

    @property
    def pg_dsn(self) -> str:
        return (
            f"postgresql://{self.pg_user}:{self.pg_password}@{self.pg_host}:{self.pg_port}/{self.pg_database}"
        )

    @property
    def pg_reader(self) -> tuple[str, str]:
        """The read-only role the UI connects as: (user, password)."""
        return self.pg_reader_user, self.pg_reader_password

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

    def scoped(self, prefix: str) -> Settings:
        """A copy with topics and consumer groups of its own, for benchmarks and tests on a shared broker."""
        return self.model_copy(
            update={
                "topic_transactions": f"{prefix}.transactions",
                "topic_scoring": f"{prefix}.scoring",
                "detector_group": f"{prefix}-detector",
                "sink_group": f"{prefix}-sink",
            }
        )

    def environment(self) -> dict[str, str]:
        """These settings as the environment variables that reproduce them in another process."""
        prefix = self.model_config["env_prefix"]
        return {
            f"{prefix}{name.upper()}": str(value)
            for name, value in self.model_dump().items()
            if value is not None
        }

    def kafka_client_config(self) -> dict[str, str]:
        """librdkafka-style connection settings shared by every Kafka client of the project."""
        config = {
            "bootstrap.servers": self.kafka_bootstrap_servers,
            "security.protocol": self.kafka_security_protocol,
        }
        optional = {
            "sasl.mechanism": self.kafka_sasl_mechanism,
            "sasl.username": self.kafka_sasl_username,
            "sasl.password": self.kafka_sasl_password,
            "ssl.ca.location": self.kafka_ssl_cafile,
        }
        config.update({key: value for key, value in optional.items() if value is not None})
        return config
