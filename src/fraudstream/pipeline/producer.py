"""Sends transactions to Kafka in the seed's format: one JSON message per row, keyed by customer.

Rows go out in time order (a stable sort on transaction_time), as a live stream would deliver them,
so each customer's history reaches the detector in the same order as offline scoring sees it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from confluent_kafka import KafkaException, Producer

from fraudstream.config import Settings
from fraudstream.contracts.messages import TransactionData, encoder
from fraudstream.contracts.schema import INPUT_COLUMNS, coerce, customer_ids, transaction_times
from fraudstream.pipeline.kafka import producer_config

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SendReport:
    sent: int
    seconds: float
    transaction_ids: list[str]

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("inf")


class TransactionProducer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer = Producer(producer_config(settings))
        self._failures: list[str] = []

    def send(
        self, frame: pd.DataFrame, rate: float | None = None, progress: Progress | None = None
    ) -> SendReport:
        """Send every row of ``frame`` (input format, validated before anything is sent).

        ``rate`` caps the messages per second; ``progress(done, total)`` is called as rows go out.
        Returns once every message is acknowledged by the broker; raises if any was not.
        """
        typed = coerce(frame)
        ids = [str(uuid.uuid4()) for _ in range(len(typed))]
        total = len(typed)
        started = time.perf_counter()
        for done, (key, value) in enumerate(encoded(typed, ids), start=1):
            self._produce(key, value)
            if rate:
                _pace(started, done, rate)
            if progress is not None and (done % 1000 == 0 or done == total):
                progress(done, total)
        self.flush()
        seconds = time.perf_counter() - started
        logger.info("sent transactions", extra={"fields": {"rows": total, "seconds": round(seconds, 3)}})
        return SendReport(sent=total, seconds=seconds, transaction_ids=ids)

    def flush(self, timeout: float = 60.0) -> None:
        remaining = self._producer.flush(timeout)
        if remaining:
            raise KafkaException(f"{remaining} messages not acknowledged after {timeout:.0f} s")
        if self._failures:
            failures, self._failures = self._failures, []
            raise KafkaException(f"{len(failures)} messages failed: {failures[0]}")

    def _produce(self, key: bytes, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(
                    self.settings.topic_transactions, value, key, on_delivery=self._delivered
                )
                break
            except BufferError:
                self._producer.poll(0.05)
        self._producer.poll(0)

    def _delivered(self, error: object, message: object) -> None:
        if error is not None:
            self._failures.append(str(error))


def encoded(typed: pd.DataFrame, ids: list[str]) -> Iterator[tuple[bytes, bytes]]:
    """Key and value of each row of ``typed`` (coerced input, ``ids[i]`` the transaction id of row i),
    in time order, encoded as they are consumed: the messages ``send`` produces."""
    order = np.argsort(transaction_times(typed), kind="stable")
    keys = customer_ids(typed)
    # Structs from plain column lists: the same JSON as the rows' dicts, 7x faster to build.
    columns = [typed[name].tolist() for name in INPUT_COLUMNS]
    records = [TransactionData(*row) for row in zip(*columns, strict=True)]
    for row in order:
        yield keys[row].encode(), encoder.encode({"transaction_id": ids[row], "data": records[row]})


def _pace(started: float, done: int, rate: float) -> None:
    ahead = done / rate - (time.perf_counter() - started)
    if ahead > 0:
        time.sleep(ahead)
