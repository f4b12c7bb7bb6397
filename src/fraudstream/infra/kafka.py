"""Local Apache Kafka in KRaft mode, run with ``java`` from jars resolved on Maven Central: one node, or a
cluster of nodes that are each broker and controller (every node a voter of the controller quorum)."""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from fraudstream.infra.process import (
    InfraError,
    kill,
    port_in_use,
    read_pid,
    spawn,
    terminate,
    terminate_all,
    wait_until,
)
from fraudstream.infra.secrets import kafka_scram_credential, write_private

logger = logging.getLogger(__name__)

POM = Path(__file__).with_name("kafka-pom.xml")
LOG4J_CONFIG = Path(__file__).with_name("kafka-log4j2.properties")
HEAP = "-Xms256m -Xmx768m"
# Each node of a cluster: three JVMs share a small machine, and the page cache holds the logs anyway.
CLUSTER_HEAP = "-Xms192m -Xmx512m"
# What Kafka's own bin/kafka-run-class.sh passes (KAFKA_JVM_PERFORMANCE_OPTS): short G1 pauses.
JVM_PERFORMANCE = (
    "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 "
    "-XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true"
)


MECHANISM = "SCRAM-SHA-512"
BROKER_NAME = "kafka"  # the common name of the broker's certificate
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@dataclass(frozen=True)
class BrokerSecurity:
    """A SASL_SSL client listener: the broker's key and certificate, the CA, and its super user.

    The super user's SCRAM credential is written when the storage is formatted; the broker also uses
    it for its own inter-broker connections.
    """

    key: Path
    certificate: Path
    ca: Path
    admin_user: str
    admin_password: str = field(repr=False)


@dataclass(frozen=True)
class KafkaServer:
    """Where one local node keeps its jars and data, and the ports it listens on.

    ``voters`` is the controller quorum (``id@host:port,...``; unset: this node alone), ``cluster_id``
    the id its storage is formatted with (unset: a new one): the nodes of a cluster share both.
    """

    cache_dir: Path
    data_dir: Path
    port: int = 9092
    host: str = "127.0.0.1"
    security: BrokerSecurity | None = None
    node_id: int = 1
    voters: str | None = None
    cluster_id: str | None = None
    heap: str = HEAP

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

    @property
    def quorum(self) -> str:
        return self.voters or f"{self.node_id}@{self.host}:{self.controller_port}"

    def start(self, timeout: float = 90.0) -> None:
        """Start the node in the background (idempotent) and wait until it accepts connections."""
        self.launch()
        self.wait_accepting(timeout)

    def wait_accepting(self, timeout: float = 90.0) -> None:
        wait_until(self._accepting, timeout, f"Kafka node {self.node_id}", self.log_file)

    def launch(self) -> None:
        """Start the node in the background if it is not running; do not wait for it: the nodes of a
        cluster elect their controller only once a majority of them runs."""
        if self.pid() is not None:
            return
        java = _require("java", "install a Java 17+ runtime (Debian package 'openjdk-17-jre-headless')")
        for port in (self.port, self.controller_port):
            if port_in_use(self.host, port):
                raise InfraError(f"port {port} is in use by another program; Kafka needs it free")
        self.ensure_jars()
        config = self._write_config()
        self._format_storage(java, config)
        command = [java, *self.heap.split(), *JVM_PERFORMANCE.split(),
                   f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
                   "-cp", self._classpath(), "kafka.Kafka", str(config)]  # fmt: skip
        logger.info("starting Kafka node %s on %s", self.node_id, self.bootstrap_servers)
        spawn(command, self.log_file, self.pid_file)

    def stop(self) -> None:
        """A controlled shutdown (SIGTERM): leadership moves to the other nodes first."""
        pid = self.pid()
        if pid is not None:
            logger.info("stopping Kafka node %s (pid %s)", self.node_id, pid)
            terminate(pid, timeout=60)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """kill -9: the node gets no chance to hand over its leaderships or flush its logs."""
        pid = self.pid()
        if pid is not None:
            logger.info("killing Kafka node %s (pid %s)", self.node_id, pid)
            kill(pid)
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
            "node.id": str(self.node_id),
            "controller.quorum.voters": self.quorum,
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str((self.data_dir / "kraft-logs").resolve()),
            "auto.create.topics.enable": "false",
            "num.partitions": "3",
            # Few partitions for Kafka's own topics (50 by default): a local start creates them fast.
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.num.partitions": "3",
            **internal_topics(len(self.quorum.split(","))),
            "group.initial.rebalance.delay.ms": "0",
            "message.max.bytes": "1048576",
        }
        if self.security is not None:
            settings.update(self._secure_listener(self.security))
        # Owner-only: secured, it holds the super user's password.
        write_private(config, "".join(f"{key}={value}\n" for key, value in settings.items()))
        return config

    def _secure_listener(self, security: BrokerSecurity) -> dict[str, str]:
        """SASL_SSL with SCRAM-SHA-512 for every client, and ACLs enforced.

        SCRAM cannot authenticate KRaft controller connections, so the controller listener (loopback
        only) is TLS with client certificates: only a holder of a certificate from the local CA gets
        in, and the broker's own certificate (its principal ``User:CN=kafka``) is a super user.
        """
        keystore = self.data_dir / "broker-keystore.pem"
        write_private(keystore, security.key.read_text() + security.certificate.read_text())
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{security.admin_user}" password="{security.admin_password}";'
        )
        return {
            "listeners": f"SASL_SSL://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"SASL_SSL://{self.host}:{self.port}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
            "listener.name.controller.ssl.client.auth": "required",
            "inter.broker.listener.name": "SASL_SSL",
            "sasl.enabled.mechanisms": MECHANISM,
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore.resolve()),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(security.ca.resolve()),
            "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
            "authorizer.class.name": AUTHORIZER,
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{security.admin_user};User:CN={BROKER_NAME}",
        }

    def _format_storage(self, java: str, config: Path) -> None:
        """Format the KRaft log directory on first start; later starts keep the data.

        Secured, the super user's SCRAM credential is part of the formatted metadata (salted: the
        password is not on the command line). A directory formatted in the other mode is refused.
        """
        mode_file = self.data_dir / "security-mode"
        mode = "SASL_SSL" if self.security is not None else "PLAINTEXT"
        if (self.data_dir / "kraft-logs" / "meta.properties").exists():
            formatted = mode_file.read_text().strip() if mode_file.exists() else "PLAINTEXT"
            if formatted != mode:
                raise InfraError(
                    f"the Kafka data in {self.data_dir} was made for {formatted} mode, not {mode}: "
                    "use another FRAUDSTREAM_DATA_DIR (or `make clean` to start afresh)"
                )
            return
        cluster_id = self.cluster_id or new_cluster_id()
        scram = []
        if self.security is not None:
            credential = kafka_scram_credential(self.security.admin_user, self.security.admin_password)
            scram = ["--add-scram", credential]
        result = subprocess.run(
            [java, f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", self._classpath(),
             "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config), *scram],
            capture_output=True,
            text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise InfraError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")
        mode_file.write_text(mode + "\n")


@dataclass(frozen=True)
class KafkaCluster:
    """The local Kafka: its nodes (one, or a cluster), started and stopped together."""

    nodes: tuple[KafkaServer, ...]

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes)

    @property
    def log_files(self) -> list[Path]:
        return [node.log_file for node in self.nodes]

    @property
    def libs_dir(self) -> Path:
        """The jars every node runs from (one resolution, shared)."""
        return self.nodes[0].libs_dir

    def pids(self) -> tuple[int, ...] | None:
        """Every node's process, None unless all of them run."""
        pids = tuple(node.pid() for node in self.nodes)
        return None if None in pids else pids

    def node(self, node_id: int) -> KafkaServer:
        return next(node for node in self.nodes if node.node_id == node_id)

    def start(self, timeout: float = 90.0) -> None:
        """Launch every node, then wait until each accepts connections (idempotent)."""
        for node in self.nodes:
            node.launch()
        for node in self.nodes:
            node.wait_accepting(timeout)

    def stop(self) -> None:
        """Every node at once: stopped one after the other, the last would wait for a controller
        majority that is gone (a minute each) before giving up its controlled shutdown."""
        stop_nodes([node.pid_file for node in self.nodes])


def stop_nodes(pid_files: list[Path]) -> None:
    """Stop the nodes these pid files name, all at once, and remove the files."""
    pids = [pid for pid in map(read_pid, pid_files) if pid is not None]
    if pids:
        logger.info("stopping Kafka (pids %s)", pids)
        terminate_all(pids, timeout=60)
    for pid_file in pid_files:
        pid_file.unlink(missing_ok=True)


def stop_every_node(root: Path) -> None:
    """Every local node under ``root``, one broker's or a cluster's: `down` stops whichever ran there."""
    stop_nodes([root / "kafka.pid", *sorted(root.glob("broker-*/kafka.pid"))])


def local_cluster(
    cache_dir: Path, root: Path, addresses: list[tuple[str, int]], security: BrokerSecurity | None = None
) -> KafkaCluster:
    """The local Kafka listening on ``addresses`` (host, port), data under ``root``.

    One address: one node whose data is ``root`` itself. More: node ``i`` (from 1) in ``root/broker-i``,
    each also a controller on its port + 1, every node a voter, one cluster id kept in ``root``.
    """
    if len(addresses) == 1:
        host, port = addresses[0]
        return KafkaCluster((KafkaServer(cache_dir, root, port, host, security),))
    voters = ",".join(f"{i}@{host}:{port + 1}" for i, (host, port) in enumerate(addresses, start=1))
    cluster_id = _cluster_id(root)
    return KafkaCluster(
        tuple(
            KafkaServer(
                cache_dir, root / f"broker-{i}", port, host, security, i, voters, cluster_id, CLUSTER_HEAP
            )
            for i, (host, port) in enumerate(addresses, start=1)
        )
    )


def internal_topics(nodes: int) -> dict[str, str]:
    """Kafka's own topics (group offsets, transaction state, share groups) replicated like the data:
    on three nodes or more, three copies of which two must be in sync to accept a write."""
    replicas = str(min(nodes, 3))
    in_sync = str(min(nodes, 2))
    return {
        "offsets.topic.replication.factor": replicas,
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": in_sync,
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": in_sync,
        "default.replication.factor": replicas,
        "min.insync.replicas": in_sync,
    }


def new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")  # may start with "-"


def _cluster_id(root: Path) -> str:
    """The cluster's id, made on its first start and kept in ``root``: every node is formatted with it."""
    path = root / "cluster-id"
    if not path.exists():
        root.mkdir(parents=True, exist_ok=True)
        path.write_text(new_cluster_id() + "\n")
    return path.read_text().strip()


def _require(program: str, hint: str) -> str:
    path = shutil.which(program)
    if path is None:
        raise InfraError(f"'{program}' was not found on PATH: {hint}")
    return path
