"""The local Kafka's layout: one node, or a cluster of nodes that are each broker and controller."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka.admin import PartitionMetadata, TopicMetadata

from fraudstream.config import Settings
from fraudstream.infra.kafka import internal_topics, local_cluster
from fraudstream.infra.process import InfraError
from fraudstream.infra.stack import LocalStack
from fraudstream.infra.topics import min_insync_replicas, topic_specs
from fraudstream.ops.status import topic_status


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "FRAUDSTREAM_KAFKA_BROKERS",
        "FRAUDSTREAM_KAFKA_BOOTSTRAP_SERVERS",
        "FRAUDSTREAM_TOPIC_REPLICATION_FACTOR",
    ):
        monkeypatch.delenv(name, raising=False)


def test_one_broker_stays_the_default_with_one_copy_of_everything():
    settings = Settings()
    assert (settings.kafka_brokers, settings.kafka_bootstrap_servers) == (1, "localhost:9092")
    assert (settings.topic_replication_factor, min_insync_replicas(settings)) == (1, 1)
    assert internal_topics(1)["transaction.state.log.replication.factor"] == "1"


def test_a_three_broker_cluster_lists_every_node_and_keeps_two_of_three_copies_in_sync():
    settings = Settings(kafka_brokers=3)
    assert settings.kafka_bootstrap_servers == "localhost:9092,localhost:9094,localhost:9096"
    assert (settings.topic_replication_factor, min_insync_replicas(settings)) == (3, 2)
    assert all(spec.config["min.insync.replicas"] == "2" for spec in topic_specs(settings))
    internal = internal_topics(3)
    assert (
        internal["offsets.topic.replication.factor"]
        == internal["transaction.state.log.replication.factor"]
        == "3"
    )
    assert internal["transaction.state.log.min.isr"] == internal["min.insync.replicas"] == "2"


def test_an_explicit_list_and_replication_factor_are_kept():
    settings = Settings(kafka_brokers=3, kafka_bootstrap_servers="a:1,b:2,c:3", topic_replication_factor=2)
    assert (settings.kafka_bootstrap_servers, settings.topic_replication_factor) == ("a:1,b:2,c:3", 2)


def test_with_brokers_derives_the_addresses_and_replication_again():
    three = Settings(kafka_bootstrap_servers="127.0.0.1:20000").with_brokers(3)
    assert three.kafka_bootstrap_servers == "127.0.0.1:20000,127.0.0.1:20002,127.0.0.1:20004"
    assert three.topic_replication_factor == 3
    one = three.with_brokers(1)
    assert (one.kafka_bootstrap_servers, one.topic_replication_factor) == ("127.0.0.1:20000", 1)
    assert three.with_brokers(3).environment() == three.environment()


def test_a_cluster_node_has_its_own_ports_and_folder_and_shares_the_quorum_and_cluster_id(tmp_path: Path):
    cluster = local_cluster(
        tmp_path / "cache", tmp_path / "kafka", [("127.0.0.1", 20000 + 2 * n) for n in range(3)]
    )
    voters = "1@127.0.0.1:20001,2@127.0.0.1:20003,3@127.0.0.1:20005"
    assert [node.node_id for node in cluster.nodes] == [1, 2, 3]
    assert [node.data_dir for node in cluster.nodes] == [
        tmp_path / "kafka" / f"broker-{n}" for n in (1, 2, 3)
    ]
    assert [(node.port, node.controller_port) for node in cluster.nodes] == [
        (20000, 20001),
        (20002, 20003),
        (20004, 20005),
    ]
    assert {node.quorum for node in cluster.nodes} == {voters}
    assert len({node.cluster_id for node in cluster.nodes}) == 1
    again = local_cluster(
        tmp_path / "cache", tmp_path / "kafka", [("127.0.0.1", 20000 + 2 * n) for n in range(3)]
    )
    assert again.nodes[0].cluster_id == cluster.nodes[0].cluster_id  # kept: a restart joins the same cluster
    assert cluster.bootstrap_servers == "127.0.0.1:20000,127.0.0.1:20002,127.0.0.1:20004"


def test_one_node_keeps_the_single_broker_folder_and_is_its_own_quorum(tmp_path: Path):
    (node,) = local_cluster(tmp_path / "cache", tmp_path / "kafka", [("127.0.0.1", 20000)]).nodes
    assert (node.data_dir, node.quorum) == (tmp_path / "kafka", "1@127.0.0.1:20001")


def test_a_cluster_needs_an_address_per_broker(tmp_path: Path):
    settings = Settings(kafka_brokers=3, kafka_bootstrap_servers="a:1,b:2", data_dir=tmp_path)
    with pytest.raises(InfraError, match=r"FRAUDSTREAM_KAFKA_BROKERS is 3 but .* lists 2 address"):
        LocalStack.from_settings(settings)


def topic(*partitions: tuple[int, list[int], list[int]]) -> TopicMetadata:
    found = TopicMetadata()
    for number, (leader, replicas, isr) in enumerate(partitions):
        partition = PartitionMetadata()
        partition.id, partition.leader, partition.replicas, partition.isrs = number, leader, replicas, isr
        found.partitions[number] = partition
    return found


def test_a_partition_missing_a_replica_from_its_isr_or_without_leader_is_not_ok():
    healthy = topic((1, [1, 2, 3], [1, 2, 3]), (2, [2, 3, 1], [3, 1, 2]))
    assert topic_status(healthy, 2)["ok"] is True
    under = topic_status(topic((1, [1, 2, 3], [1, 2, 3]), (2, [2, 3, 1], [2, 1])), 2)
    assert under["ok"] is False and under["leaders"]["1"] == {
        "leader": 2,
        "replicas": [2, 3, 1],
        "isr": [2, 1],
        "in_sync": False,
    }
    assert topic_status(topic((-1, [1], [])), 1)["ok"] is False
    assert topic_status(healthy, 3)["ok"] is False
    assert topic_status(None, 3) == {"partitions": 0, "ok": False, "leaders": {}}
