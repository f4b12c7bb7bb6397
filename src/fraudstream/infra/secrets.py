"""Generated passwords kept as files (mode 0600), and the salted forms servers store instead of them.

Servers are only ever handed a salted verifier (Kafka's StorageTool, PostgreSQL's ``ALTER ROLE``), so
the plain password appears in no command line, statement or server log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

KAFKA_SCRAM_ITERATIONS = 8192
PG_SCRAM_ITERATIONS = 4096  # PostgreSQL's scram_iterations default


def password_file(directory: Path, name: str) -> Path:
    """The file holding ``name``'s password; a random one is written on first use."""
    path = directory / name
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(24) + "\n")
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only (also when the file existed before)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def read_password(path: Path) -> str:
    return path.read_text().rstrip("\r\n")


def kafka_scram_credential(user: str, password: str, mechanism: str = "SCRAM-SHA-512") -> str:
    """``--add-scram`` argument of Kafka's StorageTool: the salted password, never the password."""
    digest = mechanism.removeprefix("SCRAM-").replace("-", "").lower()
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), salt, KAFKA_SCRAM_ITERATIONS)
    return (
        f'{mechanism}=[name={user},salt="{_b64(salt)}",'
        f'saltedpassword="{_b64(salted)}",iterations={KAFKA_SCRAM_ITERATIONS}]'
    )


def pg_scram_verifier(password: str) -> str:
    """A SCRAM-SHA-256 verifier as PostgreSQL stores it (RFC 5803), for ``ALTER ROLE ... PASSWORD``."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PG_SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    return f"SCRAM-SHA-256${PG_SCRAM_ITERATIONS}:{_b64(salt)}${_b64(stored_key)}:{_b64(server_key)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
