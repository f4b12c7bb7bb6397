"""The secured mode's pure parts: which ACLs each principal gets, the services' environments, verifiers."""

from __future__ import annotations

import base64
import hashlib
import hmac

from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from fraudstream.config import Settings
from fraudstream.infra.kafka_access import acl_bindings, principal
from fraudstream.infra.secrets import kafka_scram_credential, password_file, pg_scram_verifier
from fraudstream.infra.security import child_environment


def allowed(settings: Settings, service: str) -> set[tuple[str, str, str, str]]:
    """(resource type, pattern, name, operation) that ``service`` is allowed."""
    user = f"User:{principal(service)}"
    return {
        (binding.restype.name, binding.resource_pattern_type.name, binding.name, binding.operation.name)
        for binding in acl_bindings(settings)
        if binding.principal == user
    }


def test_the_producer_may_only_write_transactions():
    assert allowed(Settings(), "producer") == {
        ("TOPIC", "LITERAL", "transactions", "WRITE"),
        ("TOPIC", "LITERAL", "transactions", "DESCRIBE"),
    }


def test_the_detector_may_use_only_transactional_ids_with_its_group_as_prefix():
    settings = Settings(detector_group="det")
    transactional = {grant for grant in allowed(settings, "detector") if grant[0] == "TRANSACTIONAL_ID"}

    assert transactional == {
        ("TRANSACTIONAL_ID", "PREFIXED", "det-", "WRITE"),
        ("TRANSACTIONAL_ID", "PREFIXED", "det-", "DESCRIBE"),
    }


def test_the_ui_writes_only_uploads_decisions_and_rules_and_nothing_is_granted_on_the_cluster_or_everything():
    settings = Settings()
    ui_writes = {grant[2] for grant in allowed(settings, "ui") if grant[3] == "WRITE"}
    bindings = acl_bindings(settings)

    assert ui_writes == {"transactions", "labels", "rules"}
    assert all(binding.restype is not ResourceType.BROKER for binding in bindings)
    assert all(binding.name not in ("*", "") for binding in bindings)
    assert all(binding.operation is not AclOperation.ALL for binding in bindings)
    assert {binding.resource_pattern_type for binding in bindings} <= {
        ResourcePatternType.LITERAL,
        ResourcePatternType.PREFIXED,
    }


def test_a_service_is_given_password_files_and_loses_the_inherited_plain_password():
    base = {"FRAUDSTREAM_PG_PASSWORD": "fraud", "FRAUDSTREAM_PG_USER": "fraud", "PATH": "/bin"}
    extra = {"FRAUDSTREAM_PG_PASSWORD_FILE": "/secrets/pg", "FRAUDSTREAM_PG_USER": "fraud_writer"}

    assert child_environment(base, extra) == {
        "PATH": "/bin",
        "FRAUDSTREAM_PG_USER": "fraud_writer",
        "FRAUDSTREAM_PG_PASSWORD_FILE": "/secrets/pg",
    }


def test_a_password_file_is_made_once_owner_only(tmp_path):
    path = password_file(tmp_path / "secrets", "kafka-sink")
    first = path.read_text()

    assert password_file(tmp_path / "secrets", "kafka-sink").read_text() == first
    assert path.stat().st_mode & 0o777 == 0o600 and (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
    assert len(first.strip()) >= 32


def test_the_postgres_verifier_is_rfc5803_scram_sha_256_of_the_password():
    verifier = pg_scram_verifier("s3cret")
    method, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored_key, server_key = (base64.b64decode(key) for key in keys.split(":"))
    salted = hashlib.pbkdf2_hmac("sha256", b"s3cret", base64.b64decode(salt), int(iterations))

    assert method == "SCRAM-SHA-256" and "s3cret" not in verifier
    assert stored_key == hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    assert server_key == hmac.digest(salted, b"Server Key", "sha256")


def test_the_kafka_credential_holds_a_salted_password_not_the_password():
    credential = kafka_scram_credential("fraudstream-admin", "s3cret")

    assert credential.startswith("SCRAM-SHA-512=[name=fraudstream-admin,salt=")
    assert "iterations=8192" in credential and "s3cret" not in credential
