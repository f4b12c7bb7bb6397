"""The project's Kafka topics, created idempotently with the settings they must have."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from confluent_kafka.admin import AdminClient, NewTopic

from fraudstream.config import Settings
from fraudstream.infra.process import InfraError
from fraudstream.pipeline.kafka import client_config

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


# The rules topic: compacted, so the latest version of every rule is kept forever; older versions (a
# rule's history) are kept a year before compaction may drop them. One partition: one total order of
# all rule changes, so every reader folds the same sequence and sees a consistent set at any offset.
RULES_HISTORY_MS = 365 * 24 * 3600 * 1000


def topic_specs(settings: Settings) -> list[TopicSpec]:
    durability = {"min.insync.replicas": str(min_insync_replicas(settings))}
    data = {"retention.ms": str(settings.topic_retention_ms), "cleanup.policy": "delete", **durability}
    changelog = {
        "cleanup.policy": "compact",
        "min.compaction.lag.ms": "0",
        "segment.ms": "600000",
        **durability,
    }
    rules = {"cleanup.policy": "compact", "min.compaction.lag.ms": str(RULES_HISTORY_MS), **durability}
    n = settings.topic_partitions
    return [
        TopicSpec(settings.topic_transactions, n, data),
        TopicSpec(settings.topic_scoring, n, data),
        TopicSpec(settings.dlq_transactions, n, data),
        TopicSpec(settings.dlq_scoring, n, data),
        TopicSpec(settings.topic_labels, n, data),
        TopicSpec(settings.dlq_labels, n, data),
        TopicSpec(settings.topic_state, n, changelog),
        TopicSpec(settings.topic_rules, 1, rules),
    ]


def min_insync_replicas(settings: Settings) -> int:
    """Replicas that must have a write before it is acknowledged (producers use acks=all): two when
    there are copies to spare, so one broker can be lost without losing a write or refusing one."""
    return min(settings.topic_replication_factor, 2)


def ensure_topics(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Create the missing topics; return the names created. Existing ones are checked, not changed."""
    admin = AdminClient(client_config(settings))
    existing = admin.list_topics(timeout=timeout).topics
    specs = topic_specs(settings)
    for spec in specs:
        if spec.name in existing and len(existing[spec.name].partitions) != spec.partitions:
            found = len(existing[spec.name].partitions)
            raise InfraError(f"topic {spec.name} has {found} partitions, expected {spec.partitions}")
    missing = [spec for spec in specs if spec.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(
                s.name,
                num_partitions=s.partitions,
                replication_factor=settings.topic_replication_factor,
                config=s.config,
            )
            for s in missing
        ],
        operation_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result()
            created.append(name)
        except Exception as error:
            if "TOPIC_ALREADY_EXISTS" not in str(error):
                raise InfraError(f"creating topic {name} failed: {error}") from error
    logger.info("created topics %s", created)
    return created
