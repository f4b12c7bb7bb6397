"""Labels as a stream: publishing decisions to ``labels``, and the consumer writing them to ``fraud_labels``.

The consumer runs inside the sink process, a ``pipeline.table_writer`` like the sink. Each batch is one
idempotent insert (``ON CONFLICT (label_id) DO NOTHING``: a replayed or repeated decision is one row of
history), then the dead letters are acknowledged, then the offsets are committed.
"""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
from aiokafka import ConsumerRecord
from confluent_kafka import KafkaException, Producer

from fraudstream.config import Settings
from fraudstream.contracts.messages import LabelMessage, decode_label, encoder
from fraudstream.pipeline.kafka import producer_config
from fraudstream.pipeline.producer import Progress
from fraudstream.pipeline.table_writer import Decoded, Table, TableWriter, decode_records

INSERT = """
INSERT INTO fraud_labels (label_id, transaction_id, label, source, author, labelled_at, note)
SELECT * FROM unnest(
    $1::uuid[], $2::uuid[], $3::int2[], $4::text[], $5::text[], $6::timestamptz[], $7::text[]
)
ON CONFLICT (label_id) DO NOTHING
"""
DELIVERY_TIMEOUT_S = 30.0


def publish_labels(settings: Settings, labels: list[LabelMessage], progress: Progress | None = None) -> int:
    """Send ``labels`` to the labels topic (key = transaction id) and wait for every acknowledgement.

    Raises KafkaException when a label was not acknowledged; sending again is harmless (same label ids).
    """
    producer = Producer(producer_config(settings))
    failures: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    for done, label in enumerate(labels, start=1):
        _produce(producer, settings.topic_labels, label, delivered)
        if progress is not None:
            progress(done, len(labels))
    remaining = producer.flush(DELIVERY_TIMEOUT_S)
    if remaining:
        producer.purge()  # given up on: sending them again is harmless (same label ids)
        producer.poll(0)
        raise KafkaException(f"{remaining} label(s) not acknowledged in {DELIVERY_TIMEOUT_S:.0f} s")
    if failures:
        raise KafkaException(failures[0])
    return len(labels)


def _produce(producer: Producer, topic: str, label: LabelMessage, delivered: Callable) -> None:
    """Queue one label, waiting for room while the local queue is full (a large file)."""
    while True:
        try:
            producer.produce(
                topic, encoder.encode(label), str(label.transaction_id).encode(), on_delivery=delivered
            )
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)


def to_row(label: LabelMessage) -> tuple:
    return (
        label.label_id,
        label.transaction_id,
        label.label,
        label.source,
        label.author,
        label.at,
        label.note,
    )


def rows_and_dead_letters(records: list[ConsumerRecord]) -> Decoded:
    """The ``fraud_labels`` rows of the records that are label messages; the others, with their reason."""
    return decode_records(records, lambda record: to_row(decode_label(record.value)))


async def write_rows(pool: asyncpg.Pool, rows: list[tuple]) -> None:
    """Insert ``rows`` idempotently in one statement: arrays of columns, unnested."""
    if rows:
        await pool.execute(INSERT, *zip(*rows, strict=True))


class LabelsConsumer(TableWriter):
    """``labels`` -> ``fraud_labels``."""

    def __init__(self, settings: Settings, max_records: int = 1000) -> None:
        table = Table(
            service="labels",
            topic=settings.topic_labels,
            group=settings.labels_group,
            dead_letter_topic=settings.dlq_labels,
            decode=rows_and_dead_letters,
            write=write_rows,
            max_records=max_records,
        )
        super().__init__(settings, table)
