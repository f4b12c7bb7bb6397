"""A local certificate authority and the servers' certificates, made once with ``openssl``.

Every file is written with mode 0600 and reused when present: a second start serves the same
certificates, so clients keep trusting the same CA file.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fraudstream.infra.process import InfraError

logger = logging.getLogger(__name__)

DAYS = 825  # the longest validity that clients still accept for a server certificate
KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc"]


@dataclass(frozen=True)
class LocalCA:
    """``ca.pem`` (the certificate clients trust), its key, and one key/certificate pair per server."""

    directory: Path

    @property
    def certificate(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key(self) -> Path:
        return self.directory / "ca.key"

    def ensure(self) -> Path:
        """Create the CA unless it exists; return its certificate."""
        if self.certificate.exists() and self.key.exists():
            return self.certificate
        logger.info("creating a local certificate authority in %s", self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        _openssl(
            "req", "-x509", *KEY, "-keyout", str(self.key), "-out", str(self.certificate),
            "-days", str(DAYS), "-subj", "/CN=fraudstream local CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        _restrict(self.key, self.certificate)
        return self.certificate

    def server(self, name: str, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> tuple[Path, Path]:
        """``name``'s (key, certificate) signed by this CA for ``hosts``, made on first use.

        The key is PKCS#8 PEM, which both Kafka (PEM key store) and PostgreSQL read.
        """
        key, certificate = self.directory / f"{name}.key", self.directory / f"{name}.pem"
        if key.exists() and certificate.exists():
            return key, certificate
        self.ensure()
        request = self.directory / f"{name}.csr"
        names = ",".join(f"IP:{host}" if host.replace(".", "").isdigit() else f"DNS:{host}" for host in hosts)
        _openssl("req", *KEY, "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}")
        _openssl(
            "x509", "-req", "-in", str(request), "-CA", str(self.certificate), "-CAkey", str(self.key),
            "-CAcreateserial", "-out", str(certificate), "-days", str(DAYS),
            "-extfile", "/dev/stdin",
            stdin=f"subjectAltName={names}\nextendedKeyUsage=serverAuth,clientAuth\n",
        )  # fmt: skip
        request.unlink()
        _restrict(key, certificate, self.directory / "ca.srl")
        return key, certificate


def _openssl(*args: str, stdin: str | None = None) -> None:
    program = shutil.which("openssl")
    if program is None:
        raise InfraError("'openssl' was not found on PATH: install Debian's 'openssl' package")
    old_mask = os.umask(0o077)  # keys are never readable by others, not even for an instant
    try:
        result = subprocess.run([program, *args], input=stdin, capture_output=True, text=True)
    finally:
        os.umask(old_mask)
    if result.returncode != 0:
        raise InfraError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _restrict(*paths: Path) -> None:
    for path in paths:
        if path.exists():
            path.chmod(0o600)
