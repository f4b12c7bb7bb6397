"""Secured local mode (`fraudstream up --secure`): certificates, generated passwords, each process's settings.

Under the data directory: ``tls/`` (the local CA, the servers' keys and certificates) and ``secrets/``
(one generated password per Kafka principal and PostgreSQL role), every file mode 0600. Services are
handed their password as a file name (``FRAUDSTREAM_<NAME>_FILE``), never as a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from pydantic import SecretStr

from fraudstream.config import Settings
from fraudstream.infra.kafka import BROKER_NAME, MECHANISM, BrokerSecurity
from fraudstream.infra.kafka_access import ADMIN, SERVICES, principal
from fraudstream.infra.postgres import PostgresTLS
from fraudstream.infra.secrets import password_file, read_password
from fraudstream.infra.tls import LocalCA

PREFIX = "FRAUDSTREAM_"
PG_SSLMODE = "verify-full"
KAFKA_ADMIN_SECRET = f"kafka-{ADMIN}"
PG_OWNER_SECRET, PG_WRITER_SECRET, PG_READER_SECRET = "pg-owner", "pg-writer", "pg-reader"


@dataclass(frozen=True)
class LocalSecurity:
    data_dir: Path

    @property
    def ca(self) -> LocalCA:
        return LocalCA(self.data_dir / "tls")

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    def password_file(self, name: str) -> Path:
        return password_file(self.secrets_dir, name)

    def password(self, name: str) -> str:
        return read_password(self.password_file(name))

    def prepare(self) -> None:
        """Make what is missing: the CA, the servers' certificates, every password."""
        self.ca.ensure()
        self.ca.server(BROKER_NAME)
        self.ca.server("postgres")
        for name in (KAFKA_ADMIN_SECRET, *(f"kafka-{service}" for service in SERVICES)):
            self.password_file(name)
        for name in (PG_OWNER_SECRET, PG_WRITER_SECRET, PG_READER_SECRET):
            self.password_file(name)

    def broker(self) -> BrokerSecurity:
        key, certificate = self.ca.server(BROKER_NAME)
        return BrokerSecurity(
            key, certificate, self.ca.certificate, principal(ADMIN), self.password(KAFKA_ADMIN_SECRET)
        )

    def postgres(self) -> PostgresTLS:
        key, certificate = self.ca.server("postgres")
        return PostgresTLS(key, certificate)

    def kafka_passwords(self) -> dict[str, str]:
        """Each service's Kafka password, by service."""
        return {service: self.password(f"kafka-{service}") for service in SERVICES}

    def admin_settings(self, settings: Settings) -> Settings:
        """``settings`` as the set-up code runs: Kafka's super user, PostgreSQL's owner, both over TLS."""
        return _updated(
            settings,
            {
                **self._tls(),
                "kafka_sasl_username": principal(ADMIN),
                "kafka_sasl_password": self.password(KAFKA_ADMIN_SECRET),
                "pg_password": self.password(PG_OWNER_SECRET),
                "pg_reader_password": self.password(PG_READER_SECRET),
                "pg_writer_password": self.password(PG_WRITER_SECRET),
            },
        )

    def service_environment(self, settings: Settings, service: str) -> dict[str, str]:
        """The variables that make ``service`` (one of SERVICES) connect as itself, over TLS."""
        values, files = self._service(settings, service)
        environment = {f"{PREFIX}{name.upper()}": str(value) for name, value in values.items()}
        for name, path in files.items():
            environment[f"{PREFIX}{name.upper()}_FILE"] = str(path.resolve())
        return environment

    def service_settings(self, settings: Settings, service: str) -> Settings:
        """``settings`` as ``service`` has them in its environment (for a command run by hand)."""
        values, files = self._service(settings, service)
        passwords = {name: read_password(path) for name, path in files.items()}
        return _updated(settings, {**values, **passwords})

    def _service(self, settings: Settings, service: str) -> tuple[dict[str, object], dict[str, Path]]:
        """``service``'s settings that differ: (values, password files) by field name."""
        values = {**self._tls(), "kafka_sasl_username": principal(service)}
        files = {"kafka_sasl_password": self.password_file(f"kafka-{service}")}
        if service == "sink":
            values["pg_user"] = settings.pg_writer_user
            files["pg_password"] = self.password_file(PG_WRITER_SECRET)
        if service == "ui":
            values["ui_auth"] = True
            files["pg_reader_password"] = self.password_file(PG_READER_SECRET)
        return values, files

    def _tls(self) -> dict[str, object]:
        ca = self.ca.certificate.resolve()
        return {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": MECHANISM,
            "kafka_ssl_cafile": str(ca),
            "pg_sslmode": PG_SSLMODE,
            "pg_sslrootcert": ca,
        }


def _updated(settings: Settings, values: dict[str, object]) -> Settings:
    """``settings`` with ``values``, each password wrapped as its field is typed (``model_copy`` does
    not validate), whether a field is a ``SecretStr`` or still a ``str``."""
    fields = type(settings).model_fields

    def secret(name: str) -> bool:
        annotation = fields[name].annotation
        return annotation is SecretStr or SecretStr in get_args(annotation)

    return settings.model_copy(
        update={name: SecretStr(value) if secret(name) else value for name, value in values.items()}
    )


def child_environment(base: dict[str, str], extra: dict[str, str]) -> dict[str, str]:
    """``base`` overridden by ``extra``, less the plain value of each password ``extra`` names a file for."""
    replaced = {name.removesuffix("_FILE") for name in extra if name.endswith("_FILE")}
    return {**{name: value for name, value in base.items() if name not in replaced}, **extra}
