"""The secured local stack (`fraudstream up --secure`): the pipeline works, and everything else is refused.

A stack of its own (Kafka SASL_SSL with ACLs, PostgreSQL TLS with SCRAM), started once for this module.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)
from streamlit.testing.v1 import AppTest

from fraudstream.config import Settings
from fraudstream.infra.kafka import BROKER_NAME
from fraudstream.infra.kafka_access import principal
from fraudstream.infra.process import free_port
from fraudstream.infra.security import LocalSecurity, child_environment
from fraudstream.infra.stack import LocalStack
from fraudstream.infra.tls import LocalCA
from fraudstream.ops.loadgen import transactions
from fraudstream.ops.supervisor import ServiceProcess
from fraudstream.pipeline import kafka
from fraudstream.pipeline.producer import TransactionProducer
from fraudstream.ui import accounts
from tests.helpers import count_rows, running, wait_for
from tests.ui.conftest import RUN_TIMEOUT_S, UI_DIR

pytestmark = pytest.mark.integration

REFUSED_WITHIN_S = 10.0


@dataclass(frozen=True)
class SecureStack:
    root: Path
    base: Settings  # what the user's environment says: plaintext defaults, ports, folders
    admin: Settings  # Kafka's super user and PostgreSQL's owner, over TLS
    security: LocalSecurity

    def as_service(self, service: str) -> Settings:
        return self.security.service_settings(self.base, service)


@pytest.fixture(scope="module")
def secure() -> Iterator[SecureStack]:
    root = Path(tempfile.mkdtemp(prefix="fraudstream-secure-"))
    root.chmod(0o755)  # PostgreSQL runs as its own user and must reach its data folder
    base = Settings(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port(following=1)}",
        pg_port=free_port(),
        data_dir=root / "data",
        log_dir=root / "logs",
        cache_dir=Path(__file__).resolve().parents[2] / ".cache",
        batch_timeout_ms=20,
        mlflow_tracking_uri="",  # no registry: the detector serves model_path
    )
    stack = LocalStack.from_settings(base, secure=True)
    try:
        stack.up()
        yield SecureStack(root, base, stack.settings, stack.security)
    finally:
        stack.down()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def secure_services(secure: SecureStack) -> Iterator[dict[str, ServiceProcess]]:
    """The detector and the sink, each started as the supervisor starts it: its own principal and role."""
    services = {
        name: ServiceProcess(
            name, secure.base, *extra, env=secure.security.service_environment(secure.base, name)
        )
        for name, extra in (("detector", ("--instance", "secure")), ("sink", ()))
    }
    with running(services):
        yield services


def kafka_error(config: dict[str, object], timeout: float = REFUSED_WITHIN_S) -> str:
    """The error a client with ``config`` meets when it asks for the cluster's metadata."""
    errors: list[str] = []
    admin = AdminClient({**config, "error_cb": lambda error: errors.append(str(error))})
    with pytest.raises(KafkaException) as refused:
        admin.list_topics(timeout=timeout)
    admin.poll(0)
    return " ".join([str(refused.value), *errors])


# --- the pipeline ---------------------------------------------------------------------------------


def test_transactions_are_scored_into_postgres_with_each_service_as_itself(secure, secure_services):
    frame = transactions(90, customer_count=30, seed=17)
    report = TransactionProducer(secure.as_service("producer")).send(frame)

    wait_for(
        lambda: count_rows(secure.admin, report.transaction_ids) == len(frame),
        90,
        f"{len(frame)} rows",
        *secure_services.values(),
    )


def test_services_are_started_with_password_files_not_passwords(secure):
    for service in ("producer", "detector", "sink", "ui"):
        environment = secure.security.service_environment(secure.base, service)
        assert environment["FRAUDSTREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert not any(name.endswith("_PASSWORD") for name in environment), service
        for name, value in environment.items():
            if name.endswith("_PASSWORD_FILE"):
                assert Path(value).stat().st_mode & 0o077 == 0, (service, name)


def test_certificates_keys_and_passwords_are_owner_only_and_reused(secure):
    made = sorted((secure.base.data_dir / "tls").iterdir()) + sorted(secure.security.secrets_dir.iterdir())
    before = {path: path.read_bytes() for path in made}
    secure.security.prepare()

    assert all(path.stat().st_mode & 0o777 == 0o600 for path in made)
    assert {path: path.read_bytes() for path in made} == before


# --- Kafka refusals -------------------------------------------------------------------------------


def test_kafka_refuses_a_client_without_credentials(secure):
    ca = secure.admin.kafka_ssl_cafile
    config = {"bootstrap.servers": secure.base.kafka_bootstrap_servers, "security.protocol": "SSL"}

    kafka_error({**config, "ssl.ca.location": ca})


def test_kafka_refuses_a_wrong_password(secure):
    config = kafka.client_config(secure.as_service("producer"))

    errors = kafka_error({**config, "sasl.password": "not-the-password"})

    assert "Authentication failed" in errors


def test_kafka_refuses_a_client_without_tls(secure):
    config = kafka.client_config(secure.as_service("producer"))

    kafka_error({**config, "security.protocol": "SASL_PLAINTEXT"})
    kafka_error({"bootstrap.servers": secure.base.kafka_bootstrap_servers})


def test_kafka_refuses_a_server_certificate_the_client_does_not_trust(secure, tmp_path):
    other = LocalCA(tmp_path).ensure()
    config = kafka.client_config(secure.as_service("producer"))

    errors = kafka_error({**config, "ssl.ca.location": str(other)})

    assert "certificate verify failed" in errors


def test_the_ui_principal_cannot_produce_to_scoring(secure):
    assert produce_error(secure.as_service("ui"), secure.base.topic_scoring) == (
        KafkaError.TOPIC_AUTHORIZATION_FAILED
    )


def test_the_producer_principal_writes_transactions_only(secure):
    producer = secure.as_service("producer")

    assert produce_error(producer, secure.base.topic_transactions) is None
    for topic in (secure.base.topic_scoring, secure.base.dlq_transactions):
        assert produce_error(producer, topic) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_producer_principal_cannot_read_scoring(secure):
    assert read_error(secure, "producer", secure.base.topic_scoring) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_sink_principal_reads_scoring_but_not_transactions(secure):
    assert read_error(secure, "sink", secure.base.topic_scoring) is None
    assert read_error(secure, "sink", secure.base.topic_transactions) == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_the_detector_may_use_only_its_own_transactional_ids(secure):
    detector = secure.as_service("detector")

    assert init_transactions_error(detector, f"{detector.detector_group}-another-instance") is None
    assert init_transactions_error(detector, "someone-else-1") == (
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    )


def produce_error(settings: Settings, topic: str) -> int | None:
    """The delivery error code of one message to ``topic``, or None when it was written."""
    outcome: list[KafkaError | None] = []
    producer = Producer({**kafka.client_config(settings), "message.timeout.ms": 10_000})
    producer.produce(topic, b"{}", b"acl-test", on_delivery=lambda error, _: outcome.append(error))
    producer.flush(15)
    assert outcome, "no delivery report"
    return None if outcome[0] is None else outcome[0].code()


def read_error(secure: SecureStack, service: str, topic: str) -> int | None:
    """The error code ``service``'s consumer meets subscribing to ``topic``, or None when it can read it.

    The consumer is given a group of its own for the test, so only the topic's ACLs are in question.
    """
    group = f"acl-test-{uuid.uuid4()}"
    grant_group(secure, service, group)
    settings = secure.as_service(service)
    consumer = Consumer({**kafka.client_config(settings), "group.id": group, "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        for _ in range(10):
            message = consumer.poll(0.5)
            if message is not None and message.error() is not None:
                return message.error().code()
        return None
    finally:
        consumer.close()


def grant_group(secure: SecureStack, service: str, group: str) -> None:
    """Let ``service`` use consumer group ``group``; return once the broker's authorizer has it."""
    binding = AclBinding(
        ResourceType.GROUP, group, ResourcePatternType.LITERAL, f"User:{principal(service)}", "*",
        AclOperation.READ, AclPermissionType.ALLOW,
    )  # fmt: skip
    admin = AdminClient(kafka.client_config(secure.admin))
    for future in admin.create_acls([binding]).values():
        future.result()
    wanted = AclBindingFilter(
        ResourceType.GROUP, group, ResourcePatternType.LITERAL, None, None,
        AclOperation.ANY, AclPermissionType.ANY,
    )  # fmt: skip
    wait_for(lambda: admin.describe_acls(wanted).result() == [binding], 10, f"the ACL of group {group}")


def init_transactions_error(settings: Settings, transactional_id: str) -> int | None:
    producer = Producer({**kafka.client_config(settings), "transactional.id": transactional_id})
    try:
        producer.init_transactions(15)
    except KafkaException as error:
        return error.args[0].code()
    return None


# --- PostgreSQL refusals --------------------------------------------------------------------------


async def fetch(dsn: str, query: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        return await connection.fetch(query)
    finally:
        await connection.close()


def query(settings: Settings, statement: str, **changes: object) -> list[asyncpg.Record]:
    return asyncio.run(fetch(settings.model_copy(update=changes).pg_dsn, statement))


def test_postgres_refuses_a_connection_without_tls(secure):
    with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
        query(secure.admin, "SELECT 1", pg_sslmode="disable")


def test_postgres_refuses_a_wrong_password(secure):
    with pytest.raises(asyncpg.InvalidPasswordError):
        query(secure.admin, "SELECT 1", pg_password="not-the-password")


def test_postgres_accepts_only_tls_with_scram_and_stores_only_scram_verifiers(secure):
    rules = query(secure.admin, "SELECT type, auth_method, error FROM pg_hba_file_rules")
    passwords = query(
        secure.admin, "SELECT rolname, rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL"
    )
    settings = query(
        secure.admin, "SELECT name, setting FROM pg_settings WHERE name IN ('ssl', 'password_encryption')"
    )

    assert {(rule["type"], rule["auth_method"], rule["error"]) for rule in rules} == {
        ("hostssl", "scram-sha-256", None)
    }
    assert {row["rolname"] for row in passwords} >= {"fraud", "fraud_reader", "fraud_writer"}
    assert all(row["rolpassword"].startswith("SCRAM-SHA-256$") for row in passwords)
    assert {row["name"]: row["setting"] for row in settings} == {
        "ssl": "on",
        "password_encryption": "scram-sha-256",
    }


def test_the_sink_role_only_inserts_and_reads_its_table(secure):
    sink = secure.as_service("sink")
    row = str(uuid.uuid4())

    query(sink, f"INSERT INTO fraud_scores (transaction_id, score, fraud_flag) VALUES ('{row}', 0.1, 0)")
    assert len(query(sink, f"SELECT 1 FROM fraud_scores WHERE transaction_id = '{row}'")) == 1
    for statement in (
        f"UPDATE fraud_scores SET score = 1 WHERE transaction_id = '{row}'",
        f"DELETE FROM fraud_scores WHERE transaction_id = '{row}'",
        "TRUNCATE fraud_scores",
        "DROP TABLE fraud_scores",
        "SELECT * FROM schema_migrations",
        "CREATE TABLE sink_made (x int)",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            query(sink, statement)


def test_the_ui_role_cannot_insert_scores(secure):
    ui = secure.as_service("ui")
    reader = ui.model_copy(update={"pg_user": ui.pg_reader_user, "pg_password": ui.pg_reader_password})

    assert query(reader, "SELECT count(*) FROM fraud_scores")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        query(
            reader,
            "INSERT INTO fraud_scores (transaction_id, score, fraud_flag) VALUES (gen_random_uuid(), 0, 0)",
        )


def test_postgres_refuses_a_server_certificate_the_client_does_not_trust(secure, tmp_path):
    other = LocalCA(tmp_path).ensure()

    with pytest.raises(ssl.SSLCertVerificationError):
        query(secure.admin, "SELECT 1", pg_sslrootcert=other)


# --- secrets ----------------------------------------------------------------------------------------


def test_no_password_is_in_any_log_or_output(secure, secure_services):
    """After traffic, with a refused login too: no password in any file under the stack's folders,
    except the password files themselves and the broker's owner-only configuration."""
    TransactionProducer(secure.as_service("producer")).send(transactions(5, seed=18))
    kafka_error({**kafka.client_config(secure.as_service("ui")), "sasl.password": "wrong"})
    passwords = {path.name: path.read_bytes().strip() for path in secure.security.secrets_dir.iterdir()}
    allowed = {secure.base.data_dir / "kafka" / "server.properties"}
    scanned = [
        path
        for path in secure.root.rglob("*")
        if path.is_file() and secure.security.secrets_dir not in path.parents and path not in allowed
    ]
    logs = [path for path in scanned if path.suffix in (".log", ".out")]

    assert {path.name for path in logs} >= {"kafka.log", "server.log", "detector.log", "sink.log"}
    found = [
        (name, str(path))
        for path in scanned
        for name, password in passwords.items()
        if password in path.read_bytes()
    ]
    assert found == []


# --- the interface ------------------------------------------------------------------------------------


def test_the_interface_logs_in_over_tls_as_the_first_admin(secure, monkeypatch):
    password = accounts.run(secure.admin.pg_dsn, accounts.first_admin, "test")
    for name, value in child_environment(
        secure.base.environment(), secure.security.service_environment(secure.base, "ui")
    ).items():
        monkeypatch.setenv(name, value)
    app = AppTest.from_file(str(UI_DIR / "app.py"), default_timeout=RUN_TIMEOUT_S).run()
    app.text_input(key="login_name").input("admin")
    app.text_input(key="login_password").input(password)

    app.button[0].click().run()

    assert not app.exception and not app.error
    assert app.session_state["user"] == accounts.User("admin", "admin")
    assert accounts.run(secure.admin.pg_dsn, accounts.first_admin, "test") is None


def test_the_controller_listener_requires_a_certificate_from_the_local_ca(secure):
    host, _, port = secure.base.kafka_bootstrap_servers.rpartition(":")
    controller = (host, int(port) + 1)
    context = ssl.create_default_context(cafile=secure.admin.kafka_ssl_cafile)

    with (
        pytest.raises(ssl.SSLError, match="ALERT_BAD_CERTIFICATE"),
        socket.create_connection(controller, timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(b"\x00\x00\x00\x00")
        tls.recv(1)  # TLS 1.3: the server refuses the missing certificate after the handshake
    key, certificate = secure.security.ca.server(BROKER_NAME)
    context.load_cert_chain(certificate, key)
    with (
        socket.create_connection(controller, timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
