"""A single-node Apache Kafka broker in KRaft mode, run with ``java`` from jars resolved on Maven Central."""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from fraudstream.infra.process import InfraError, port_in_use, read_pid, spawn, terminate, wait_until

logger = logging.getLogger(__name__)

POM = Path(__file__).with_name("kafka-pom.xml")
LOG4J_CONFIG = Path(__file__).with_name("kafka-log4j2.properties")
HEAP = "-Xms256m -Xmx768m"
# What Kafka's own bin/kafka-run-class.sh passes (KAFKA_JVM_PERFORMANCE_OPTS): short G1 pauses.
JVM_PERFORMANCE = (
    "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 "
    "-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"
)


@dataclass(frozen=True)
class KafkaServer:
    """Where one local broker keeps its jars and data, and the ports it listens on."""

    cache_dir: Path
    data_dir: Path
    port: int = 9092
    host: str = "127.0.0.1"

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def libs_dir(self) -> Path:
        return self.cache_dir / "kafka" / "libs"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "kafka.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "kafka.log"

    def pid(self) -> int | None:
        return read_pid(self.pid_file)

    def ensure_jars(self) -> None:
        """Resolve the broker's jars from Maven Central once; re-resolve when the pom changes."""
        stamp = self.libs_dir / ".pom-sha256"
        digest = hashlib.sha256(POM.read_bytes()).hexdigest()
        if stamp.exists() and stamp.read_text() == digest:
            return
        _require("mvn", "install Maven (Debian package 'maven')")
        logger.info("resolving Kafka jars from Maven Central into %s", self.libs_dir)
        shutil.rmtree(self.libs_dir, ignore_errors=True)
        result = subprocess.run(
            [
                "mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
                f"-DoutputDirectory={self.libs_dir.resolve()}", "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise InfraError(
                f"Maven could not resolve Kafka:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        stamp.write_text(digest)

    def start(self, timeout: float = 90.0) -> None:
        """Start the broker in the background (idempotent) and wait until it accepts connections."""
        if self.pid() is not None:
            wait_until(self._accepting, timeout, "Kafka", self.log_file)
            return
        java = _require("java", "install a Java 17+ runtime (Debian package 'openjdk-17-jre-headless')")
        for port in (self.port, self.controller_port):
            if port_in_use(self.host, port):
                raise InfraError(f"port {port} is in use by another program; Kafka needs it free")
        self.ensure_jars()
        config = self._write_config()
        self._format_storage(java, config)
        command = [java, *HEAP.split(), *JVM_PERFORMANCE.split(),
                   f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
                   "-cp", self._classpath(), "kafka.Kafka", str(config)]  # fmt: skip
        logger.info("starting Kafka on %s", self.bootstrap_servers)
        spawn(command, self.log_file, self.pid_file)
        wait_until(self._accepting, timeout, "Kafka", self.log_file)

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None:
            logger.info("stopping Kafka (pid %s)", pid)
            terminate(pid, timeout=60)
        self.pid_file.unlink(missing_ok=True)

    def _accepting(self) -> bool:
        return self.pid() is not None and port_in_use(self.host, self.port)

    def _classpath(self) -> str:
        return str(self.libs_dir.resolve() / "*")

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "server.properties"
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str((self.data_dir / "kraft-logs").resolve()),
            "auto.create.topics.enable": "false",
            "num.partitions": "3",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "3",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "message.max.bytes": "1048576",
        }
        config.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
        return config

    def _format_storage(self, java: str, config: Path) -> None:
        """Format the KRaft log directory on first start; later starts keep the data."""
        if (self.data_dir / "kraft-logs" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")  # may start with "-"
        result = subprocess.run(
            [java, f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", self._classpath(),
             "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config)],
            capture_output=True,
            text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise InfraError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")


def _require(program: str, hint: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise InfraError(f"'{program}' was not found on PATH: {hint}")
    return path
