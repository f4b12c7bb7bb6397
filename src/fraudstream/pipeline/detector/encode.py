"""Score messages of a batch: a pure function of the decoded batch, its Kafka records and its scores.

The ``scoring`` wire format is ``contracts.messages.ScoreMessage``: every score carries its input
message as received (embedded as raw JSON: no re-encoding), and ``produced_at`` is the input record's
Kafka timestamp, from which the end-to-end latency is measured; ``decision`` and ``rules`` are the
rules' verdict (``pipeline.detector.rules``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from confluent_kafka import Message
from msgspec import Raw

from fraudstream.contracts.batch_decode import DecodedBatch
from fraudstream.contracts.messages import encoder
from fraudstream.pipeline.detector.rules import Decided


def score_messages(
    batch: DecodedBatch,
    records: Sequence[Message],
    scores: np.ndarray,
    flags: np.ndarray,
    reasons: Mapping[int, list[dict]],
    model_version: str,
    decided: Decided,
) -> list[bytes]:
    """The encoded score message of each row of ``batch.frame``, whose Kafka record is ``records[row]``.

    ``flags`` are the rows' fraud flags (0 or 1), ``reasons`` their explanations by row (rows
    without an entry have none) and ``decided`` their decisions and matched rules.
    """
    return [
        encoder.encode(
            {
                "transaction_id": transaction_id,
                "score": score,
                "fraud_flag": flag,
                "reasons": reasons.get(row, []),
                "model_version": model_version,
                "produced_at": record.timestamp()[1],
                "input": Raw(record.value()),
                "decision": decision,
                "rules": matched,
            }
        )
        for row, (record, transaction_id, score, flag, decision, matched) in enumerate(
            zip(
                records,
                batch.transaction_ids,
                scores.tolist(),
                flags.tolist(),
                decided.decisions.tolist(),
                decided.matched,
                strict=True,
            )
        )
    ]
