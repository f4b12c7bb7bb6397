"""Test helpers that drive the real system: service processes, and reading what landed."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path

import asyncpg
import orjson
import pandas as pd

from fraudstream.config import Settings
from fraudstream.infra.process import free_port


class ServiceProcess:
    """`fraudstream <name>` as a child process, with its own metrics/health port and log file."""

    def __init__(self, name: str, settings: Settings, *args: str, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.settings = settings
        self.args = args
        self.env = env or {}
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.output = Path(settings.log_dir) / f"{name}-{self.port}.out"

    def start(self) -> None:
        self.output.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "fraudstream", self.name, "--metrics-port", str(self.port), *self.args]
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.settings.environment(), **self.env},
            )

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as reply:
                return orjson.loads(reply.read())
        except OSError:
            return None

    def wait_ready(self, timeout: float = 90.0) -> None:
        wait_for(lambda: (self.health() or {}).get("ready") is True, timeout, f"{self.name} ready", self)

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        if not self.output.exists():
            return ""
        return "\n".join(self.output.read_text(errors="replace").splitlines()[-lines:])


def wait_for(check: Callable[[], bool], timeout: float, what: str, *services: ServiceProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    logs = "\n".join(f"--- {s.name} ---\n{s.log_tail()}" for s in services)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


def with_fresh_customers(frame: pd.DataFrame, tag: str) -> pd.DataFrame:
    """The same rows under customers never seen before, so the stream's history for them starts empty."""
    fresh = frame.copy()
    fresh["name_2"] = fresh["name_2"] + f"-{tag}"
    return fresh


def fetch_scores(settings: Settings, transaction_ids: Iterable[str]) -> pd.DataFrame:
    """fraud_scores rows of these transactions, indexed by transaction_id (as str)."""

    async def query() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(settings.pg_dsn)
        try:
            return await connection.fetch(
                "SELECT transaction_id::text AS transaction_id, score, fraud_flag, reasons, transaction"
                " FROM fraud_scores WHERE transaction_id = ANY($1::uuid[])",
                list(transaction_ids),
            )
        finally:
            await connection.close()

    rows = asyncio.run(query())
    columns = ["transaction_id", "score", "fraud_flag", "reasons", "transaction"]
    return pd.DataFrame([dict(row) for row in rows], columns=columns).set_index("transaction_id")


def count_rows(settings: Settings, transaction_ids: list[str]) -> int:
    return len(fetch_scores(settings, transaction_ids))
