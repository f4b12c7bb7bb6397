"""Prometheus metrics and a readiness endpoint, served by each service on one port.

``GET /metrics``: Prometheus text format. ``GET /healthz``: JSON readiness, 200 when ready, else 503.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

logger = logging.getLogger(__name__)

BATCH_BUCKETS = (1, 10, 50, 100, 500, 1000, 2000, 5000, 10000)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class ProgressWindow:
    """Totals since the last progress log line: one line per interval, however many batches."""

    interval_s: float = 10.0
    batches: int = 0
    consumed: int = 0
    written: int = 0
    dead: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, consumed: int, written: int, dead: int) -> None:
        self.batches += 1
        self.consumed += consumed
        self.written += written
        self.dead += dead

    def due(self) -> bool:
        return time.monotonic() - self.started >= self.interval_s

    def drain(self) -> dict[str, int]:
        totals = {
            "batches": self.batches,
            "consumed": self.consumed,
            "written": self.written,
            "dead": self.dead,
        }
        self.batches = self.consumed = self.written = self.dead = 0
        self.started = time.monotonic()
        return totals


# The metric families, registered once per process; each ServiceMetrics binds its service's label, so
# several services in one process (the sink and the labels consumer) each have their own series.
_SERVICE = ["service"]
_MESSAGES_IN = Counter("fraudstream_messages_in", "messages consumed", _SERVICE)
_MESSAGES_OUT = Counter("fraudstream_messages_out", "results written", _SERVICE)
_DEAD_LETTERS = Counter("fraudstream_dead_letters", "messages sent to a DLQ", _SERVICE)
_ERRORS = Counter("fraudstream_errors", "failed batches (retried)", _SERVICE)
_BATCH_SIZE = Histogram("fraudstream_batch_size", "messages per batch", _SERVICE, buckets=BATCH_BUCKETS)
_BATCH_SECONDS = Histogram(
    "fraudstream_batch_seconds", "processing time of a batch", _SERVICE, buckets=LATENCY_BUCKETS
)
CONSUMER_LAG = Gauge("fraudstream_consumer_lag", "messages behind the end", ["service", "partition"])
MODEL_INFO = Gauge("fraudstream_model_info", "the model being served", ["service", "version"])


@dataclass
class ServiceMetrics:
    """The metrics every stream service exports, labelled by service name.

    ``consumer_lag`` and ``model_info`` are the families (labelled by the caller with the service and the
    partition or version); the others are this service's series.
    """

    service: str
    messages_in: Counter = field(init=False)
    messages_out: Counter = field(init=False)
    dead_letters: Counter = field(init=False)
    errors: Counter = field(init=False)
    batch_size: Histogram = field(init=False)
    batch_seconds: Histogram = field(init=False)
    consumer_lag: Gauge = field(init=False, default=CONSUMER_LAG)
    model_info: Gauge = field(init=False, default=MODEL_INFO)
    progress: ProgressWindow = field(init=False)

    def __post_init__(self) -> None:
        self.progress = ProgressWindow()
        self.messages_in = _MESSAGES_IN.labels(self.service)
        self.messages_out = _MESSAGES_OUT.labels(self.service)
        self.dead_letters = _DEAD_LETTERS.labels(self.service)
        self.errors = _ERRORS.labels(self.service)
        self.batch_size = _BATCH_SIZE.labels(self.service)
        self.batch_seconds = _BATCH_SECONDS.labels(self.service)

    def record_batch(self, consumed: int, written: int, dead: int, seconds: float) -> None:
        """Count a finished batch; every ``progress.interval_s`` also log one progress line."""
        self.messages_in.inc(consumed)
        self.messages_out.inc(written)
        self.dead_letters.inc(dead)
        self.batch_size.observe(consumed)
        self.batch_seconds.observe(seconds)
        self.progress.add(consumed, written, dead)
        if self.progress.due():
            logger.info("progress", extra={"fields": {"service": self.service, **self.progress.drain()}})


@dataclass
class Readiness:
    """What /healthz reports; the service updates it as it runs."""

    connected: bool = False
    assigned_partitions: list[int] = field(default_factory=list)
    last_batch_at: float | None = None
    detail: str = "starting"
    extra: Callable[[], dict[str, object]] | None = field(default=None, repr=False)  # service-specific

    def batch_done(self) -> None:
        self.last_batch_at = time.time()
        self.connected = True
        self.detail = "ok"

    def report(self) -> dict[str, object]:
        age = None if self.last_batch_at is None else round(time.time() - self.last_batch_at, 3)
        return {
            "ready": self.connected,
            "assigned_partitions": sorted(self.assigned_partitions),
            "last_batch_age_s": age,
            "detail": self.detail,
            **(self.extra() if self.extra is not None else {}),
        }


@dataclass
class ReadinessGroup:
    """One process's readiness made of several consumers: the main one's report at the top level,
    each other one's under its name; ready only when all are."""

    main: Readiness
    parts: dict[str, Readiness]

    def report(self) -> dict[str, object]:
        body = self.main.report()
        for name, part in self.parts.items():
            body[name] = part.report()
            body["ready"] = body["ready"] and part.connected
        return body


def serve(port: int, readiness: Readiness | ReadinessGroup) -> ThreadingHTTPServer:
    """Serve /metrics and /healthz on ``port`` (0 = any free port) in a daemon thread."""
    handler = _handler(readiness.report)
    server = ThreadingHTTPServer(("0.0.0.0", port), handler)
    threading.Thread(target=server.serve_forever, name="telemetry", daemon=True).start()
    return server


def _handler(report: Callable[[], dict[str, object]]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest())
            elif self.path == "/healthz":
                body = report()
                self._reply(200 if body["ready"] else 503, "application/json", orjson.dumps(body))
            else:
                self._reply(404, "text/plain", b"not found\n")

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Scrapes are not events worth a log line."""

    return Handler
