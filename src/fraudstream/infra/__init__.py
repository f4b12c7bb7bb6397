"""Local infrastructure without Docker: Apache Kafka (KRaft) from Maven Central, PostgreSQL from Debian,
the project's topics and the schema migrations.

May import: the foundations (config, logs) and the Kafka module's client configuration
(pipeline.kafka). Used by ops and cli only.
"""
