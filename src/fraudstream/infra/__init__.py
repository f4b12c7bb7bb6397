"""Local infrastructure without Docker: Apache Kafka (KRaft) from Maven Central, PostgreSQL from Debian."""
