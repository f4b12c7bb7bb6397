"""The Kafka module's client configuration, lag arithmetic and /healthz client (no broker needed)."""

from __future__ import annotations

from fraudstream.config import Settings
from fraudstream.infra.process import free_port
from fraudstream.pipeline import kafka
from fraudstream.telemetry import Readiness, serve

SASL = Settings(
    kafka_bootstrap_servers="broker-1:9093,broker-2:9093",
    kafka_security_protocol="SASL_SSL",
    kafka_sasl_mechanism="SCRAM-SHA-512",
    kafka_sasl_username="detector",
    kafka_sasl_password="s3cret",
)


def test_every_confluent_client_gets_the_connection_settings_with_the_password_revealed():
    expected = {
        "bootstrap.servers": "broker-1:9093,broker-2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "detector",
        "sasl.password": "s3cret",
    }

    assert kafka.client_config(SASL) == expected
    for config in (
        kafka.producer_config(SASL),
        kafka.consumer_config(SASL, "g"),
        kafka.reader_config(SASL, "g"),
    ):
        assert config.items() >= expected.items()


def test_plaintext_leaves_the_optional_settings_out():
    assert kafka.client_config(Settings(kafka_bootstrap_servers="b:1")) == {
        "bootstrap.servers": "b:1",
        "security.protocol": "PLAINTEXT",
    }


def test_aiokafka_gets_the_same_connection_in_its_own_names():
    assert kafka.aiokafka_config(SASL) == {
        "bootstrap_servers": "broker-1:9093,broker-2:9093",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "detector",
        "sasl_plain_password": "s3cret",
    }


def test_extra_settings_override_the_defaults():
    assert kafka.producer_config(SASL, **{"linger.ms": 50})["linger.ms"] == 50
    assert kafka.consumer_config(SASL, "g", **{"enable.auto.commit": True})["enable.auto.commit"] is True
    assert kafka.consumer_config(SASL, "g")["enable.auto.commit"] is False


def test_lag_counts_from_the_start_for_a_partition_without_a_committed_offset():
    report = kafka.lag_report("t", {0: 10, 1: 5, 2: 0}, {0: 7})

    assert report["lag"] == 3 + 5 + 0
    assert report["partitions"]["0"] == {"end": 10, "committed": 7, "lag": 3}
    assert report["partitions"]["1"] == {"end": 5, "committed": -1, "lag": 5}


def test_service_health_reads_a_ready_and_a_starting_service_and_says_when_nothing_answers():
    readiness = Readiness(assigned_partitions=[2, 0])
    server = serve(0, readiness)
    port = server.server_address[1]
    try:
        starting = kafka.service_health(port, timeout=2)
        readiness.batch_done()
        ready = kafka.service_health(port, timeout=2)
    finally:
        server.shutdown()
        server.server_close()

    assert starting["running"] is True and starting["ready"] is False
    assert ready["running"] is True and ready["ready"] is True
    assert ready["assigned_partitions"] == [0, 2]
    nothing = kafka.service_health(free_port(), timeout=2)
    assert nothing["running"] is False and nothing["ready"] is False
