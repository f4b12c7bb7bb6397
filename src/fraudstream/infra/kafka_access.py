"""Kafka principals of the project's services and their least-privilege ACLs, applied through the Admin API.

Each service authenticates as its own SCRAM user and may do only what its code does:

* producer: write ``transactions``;
* detector: read ``transactions``, write ``scoring`` and ``transactions.dlq``, read and write its state
  changelog, use its consumer groups, and only transactional ids starting with ``<detector_group>-``;
* sink: read ``scoring``, write ``scoring.dlq``, use its consumer group;
* ui: describe and read the data topics, describe the services' groups (their lag), use the groups
  named ``fraudstream-ui*``, and write ``transactions``: the upload page is a producer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from fraudstream.config import Settings
from fraudstream.infra.process import InfraError
from fraudstream.infra.secrets import KAFKA_SCRAM_ITERATIONS
from fraudstream.pipeline import kafka

logger = logging.getLogger(__name__)

SERVICES = ("producer", "detector", "sink", "ui")
ADMIN = "admin"
UI_GROUP_PREFIX = "fraudstream-ui"

READ = (AclOperation.READ, AclOperation.DESCRIBE)
WRITE = (AclOperation.WRITE, AclOperation.DESCRIBE)


def principal(service: str) -> str:
    """The SCRAM user name of ``service`` (or of ``admin``, the broker's super user)."""
    return f"fraudstream-{service}"


@dataclass(frozen=True)
class Grant:
    resource: ResourceType
    name: str
    operations: tuple[AclOperation, ...]
    pattern: ResourcePatternType = ResourcePatternType.LITERAL


def topic(name: str, *operations: tuple[AclOperation, ...]) -> Grant:
    return Grant(ResourceType.TOPIC, name, tuple(dict.fromkeys(op for ops in operations for op in ops)))


def group(name: str, *operations: AclOperation, prefixed: bool = False) -> Grant:
    pattern = ResourcePatternType.PREFIXED if prefixed else ResourcePatternType.LITERAL
    return Grant(ResourceType.GROUP, name, operations, pattern)


def grants(settings: Settings) -> dict[str, list[Grant]]:
    """What each service may do, by service name."""
    data_topics = [settings.topic_transactions, settings.topic_scoring, settings.topic_labels]
    dead_letters = [settings.dlq_transactions, settings.dlq_scoring, settings.dlq_labels]
    return {
        "producer": [topic(settings.topic_transactions, WRITE)],
        "detector": [
            topic(settings.topic_transactions, READ, WRITE),  # forwards misrouted input (detector/routing)
            topic(settings.topic_scoring, WRITE),
            topic(settings.dlq_transactions, WRITE),
            topic(settings.topic_state, READ, WRITE),
            topic(settings.topic_rules, READ, WRITE),  # follows the rules; disables one that fails
            group(f"{settings.topic_rules}-reader", AclOperation.READ),
            group(settings.detector_group, AclOperation.READ),
            group(f"{settings.detector_group}-restore", AclOperation.READ),
            Grant(
                ResourceType.TRANSACTIONAL_ID,
                f"{settings.detector_group}-",
                WRITE,
                ResourcePatternType.PREFIXED,
            ),
        ],
        "sink": [
            topic(settings.topic_scoring, READ),
            topic(settings.dlq_scoring, WRITE),
            group(settings.sink_group, AclOperation.READ),
            topic(settings.topic_labels, READ),  # the labels consumer runs in the sink process
            topic(settings.dlq_labels, WRITE),
            group(settings.labels_group, AclOperation.READ),
        ],
        "ui": [
            *(topic(name, READ) for name in data_topics + dead_letters),
            topic(settings.topic_transactions, WRITE),
            topic(settings.topic_labels, WRITE),  # the review queue's decisions
            topic(settings.topic_rules, READ, WRITE),  # the Rules page (admins)
            group(f"{settings.topic_rules}-reader", AclOperation.READ),
            group(settings.detector_group, AclOperation.DESCRIBE),
            group(settings.sink_group, AclOperation.DESCRIBE),
            group(UI_GROUP_PREFIX, AclOperation.READ, AclOperation.DESCRIBE, prefixed=True),
        ],
    }


def acl_bindings(settings: Settings) -> list[AclBinding]:
    """One ALLOW binding per (service, resource, operation); a grant repeated across lines counts once."""
    keys = dict.fromkeys(
        (grant.resource, grant.name, grant.pattern, f"User:{principal(service)}", operation)
        for service, service_grants in grants(settings).items()
        for grant in service_grants
        for operation in grant.operations
    )
    return [
        AclBinding(resource, name, pattern, user, "*", operation, AclPermissionType.ALLOW)
        for resource, name, pattern, user, operation in keys
    ]


def ensure_access(admin_settings: Settings, passwords: dict[str, str], timeout: float = 30.0) -> None:
    """Create (or update) each service's SCRAM credential and its ACLs; both are idempotent."""
    admin = AdminClient(kafka.client_config(admin_settings))
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, KAFKA_SCRAM_ITERATIONS)
    upserts = [
        UserScramCredentialUpsertion(principal(service), info, password.encode())
        for service, password in passwords.items()
    ]
    _wait(admin.alter_user_scram_credentials(upserts, request_timeout=timeout), "SCRAM credential")
    _wait(admin.create_acls(acl_bindings(admin_settings), request_timeout=timeout), "ACL")
    logger.info("Kafka principals and ACLs in place for %s", ", ".join(passwords))


def _wait(futures: dict, what: str) -> None:
    for key, future in futures.items():
        try:
            future.result()
        except Exception as error:
            raise InfraError(f"creating the {what} {key} failed: {error}") from error
