"""Score messages of a batch: a pure function of the decoded batch, its Kafka records and its scores.

The ``scoring`` wire format is ``contracts.messages.ScoreMessage``: every score carries its input
message as received (embedded as raw JSON: no re-encoding), and ``produced_at`` is the input record's
Kafka timestamp, from which the end-to-end latency is measured; ``decision`` and ``rules`` are the
rules' verdict (``pipeline.detector.rules``). With a shadow challenger, each message also has its
``shadow_score`` and ``shadow_version``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from confluent_kafka import Message
from msgspec import Raw

from fraudstream.contracts.batch_decode import DecodedBatch
from fraudstream.contracts.messages import encoder
from fraudstream.pipeline.detector.rules import Decided


@dataclass(frozen=True)
class Shadow:
    """A challenger's scores of a batch's rows: recorded with the champion's, never deciding."""

    scores: np.ndarray
    version: str


def score_messages(
    batch: DecodedBatch,
    records: Sequence[Message],
    scores: np.ndarray,
    flags: np.ndarray,
    reasons: Mapping[int, list[dict]],
    model_version: str,
    decided: Decided,
    shadow: Shadow | None = None,
) -> list[bytes]:
    """The encoded score message of each row of ``batch``, whose Kafka record is ``records[row]``.

    ``flags`` are the rows' fraud flags (0 or 1), ``reasons`` their explanations by row (rows
    without an entry have none), ``decided`` their decisions and matched rules; ``shadow``, the
    challenger's scores of the same rows, if any.
    """
    shadow_scores = [None] * len(records) if shadow is None else shadow.scores.tolist()
    shadow_version = None if shadow is None else shadow.version
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
                **(
                    {}
                    if shadow_score is None
                    else {"shadow_score": shadow_score, "shadow_version": shadow_version}
                ),
            }
        )
        for row, (record, transaction_id, score, flag, decision, matched, shadow_score) in enumerate(
            zip(
                records,
                batch.transaction_ids,
                scores.tolist(),
                flags.tolist(),
                decided.decisions.tolist(),
                decided.matched,
                shadow_scores,
                strict=True,
            )
        )
    ]
