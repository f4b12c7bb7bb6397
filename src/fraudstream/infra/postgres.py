"""A local PostgreSQL server from the distribution's packages (Debian ``postgresql``), data under ``.data/``.

PostgreSQL refuses to run as root; when we are root, its programs run as the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import logging
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from fraudstream.infra.process import InfraError, port_in_use, read_pid, wait_until
from fraudstream.infra.secrets import write_private

logger = logging.getLogger(__name__)

SERVER_USER = "postgres"
# Secured: TLS connections authenticated by SCRAM-SHA-256 only. The server has no Unix socket
# (unix_socket_directories=''), so the set-up code connects the same way, over TLS, as the owner.
SECURE_HBA = """\
# TYPE   DATABASE USER ADDRESS      METHOD
hostssl  all      all  127.0.0.1/32 scram-sha-256
hostssl  all      all  ::1/128      scram-sha-256
"""


@dataclass(frozen=True)
class PostgresTLS:
    """The server's key and certificate (PEM); with them, only TLS and SCRAM are accepted."""

    key: Path
    certificate: Path


@dataclass(frozen=True)
class PostgresServer:
    """One local PostgreSQL cluster: where its data lives, its port, and the application's role."""

    data_dir: Path
    port: int = 5432
    user: str = "fraud"
    password: str = field(default="fraud", repr=False)
    database: str = "fraud"
    host: str = "127.0.0.1"
    tls: PostgresTLS | None = None

    @property
    def home(self) -> Path:
        """Owned by the server's user: the cluster and its log."""
        return (self.data_dir / "postgres").resolve()

    @property
    def cluster_dir(self) -> Path:
        return self.home / "cluster"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def address(self) -> str:
        """Where the application's database is, without its password: what may be printed."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"

    def running(self) -> bool:
        return self._pg_ctl("status").returncode == 0

    def pid(self) -> int | None:
        """The postmaster's pid (the parent of every server process), None when it is not running."""
        return read_pid(self.cluster_dir / "postmaster.pid")

    def start(self, timeout: float = 60.0) -> None:
        """Initialise the cluster on first use, start it (idempotent), create the role and database."""
        if not self.running():
            if port_in_use(self.host, self.port):
                raise InfraError(f"port {self.port} is in use by another program; PostgreSQL needs it free")
            self._init_cluster()
            logger.info("starting PostgreSQL on %s:%s", self.host, self.port)
            options = f"-p {self.port} -c listen_addresses={self.host} -c unix_socket_directories=''"
            options += self._secure_options()
            result = self._pg_ctl(
                "start", "-w", "-t", str(int(timeout)), "-l", str(self.log_file), "-o", options
            )
            if result.returncode != 0:
                raise InfraError(
                    f"PostgreSQL did not start: {result.stdout}{result.stderr}\nsee {self.log_file}"
                )
        wait_until(lambda: port_in_use(self.host, self.port), timeout, "PostgreSQL", self.log_file)

    def stop(self) -> None:
        if self.running():
            logger.info("stopping PostgreSQL")
            self._pg_ctl("stop", "-m", "fast", "-w")

    def kill(self) -> None:
        """Stop at once, as a crash would (immediate shutdown, recovery on next start)."""
        if self.running():
            self._pg_ctl("stop", "-m", "immediate", "-w")

    def _secure_options(self) -> str:
        """Server options of the secured mode: TLS on, SCRAM only, the hba file that allows only those."""
        if self.tls is None:
            return ""
        tls_dir = self.home / "tls"
        tls_dir.mkdir(exist_ok=True)
        key, certificate, hba = tls_dir / "server.key", tls_dir / "server.pem", tls_dir / "pg_hba.conf"
        write_private(key, self.tls.key.read_text())
        write_private(certificate, self.tls.certificate.read_text())
        write_private(hba, SECURE_HBA)
        self._hand_to_server_user(tls_dir, key, certificate, hba)
        return (
            f" -c ssl=on -c ssl_cert_file={certificate} -c ssl_key_file={key} -c hba_file={hba}"
            " -c ssl_min_protocol_version=TLSv1.2 -c password_encryption=scram-sha-256"
        )

    def _init_cluster(self) -> None:
        if (self.cluster_dir / "PG_VERSION").exists():
            return
        logger.info("initialising a PostgreSQL cluster in %s", self.cluster_dir)
        self.cluster_dir.mkdir(parents=True, exist_ok=True)
        password_file = self.home / ".pg-password"
        write_private(password_file, self.password + "\n")
        self._hand_to_server_user(self.home, self.cluster_dir, password_file)
        result = self._run(
            "initdb", "-D", str(self.cluster_dir), "-U", self.user, f"--pwfile={password_file}",
            "--auth-local=scram-sha-256", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        )  # fmt: skip
        password_file.unlink()
        if result.returncode != 0:
            raise InfraError(f"initdb failed: {result.stdout}{result.stderr}")
        self._create_database()

    def _create_database(self) -> None:
        """Create the application database with a single-user backend, before the server listens."""
        result = self._run(
            "postgres", "--single", "-D", str(self.cluster_dir), "postgres",
            stdin=f"CREATE DATABASE {self.database} OWNER {self.user};\n",
        )  # fmt: skip
        if result.returncode != 0:
            raise InfraError(f"creating database {self.database} failed: {result.stdout}{result.stderr}")

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run("pg_ctl", "-D", str(self.cluster_dir), *args)

    def _run(self, program: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        command = [_binary(program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, cwd="/")

    def _hand_to_server_user(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        try:
            server = pwd.getpwnam(SERVER_USER)
        except KeyError as error:
            raise InfraError("no 'postgres' system user: install Debian's 'postgresql' package") from error
        for path in paths:
            os.chown(path, server.pw_uid, server.pw_gid)


def _binary(program: str) -> str:
    """The newest installed PostgreSQL's ``program`` (Debian keeps them off PATH)."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{program}"), key=_version_key)
    if candidates:
        return candidates[-1]
    found = shutil.which(program)
    if found is None:
        raise InfraError(f"PostgreSQL's '{program}' was not found: install Debian's 'postgresql' package")
    return found


def _version_key(path: str) -> int:
    version = Path(path).parts[-3]
    return int(version) if version.isdigit() else 0
