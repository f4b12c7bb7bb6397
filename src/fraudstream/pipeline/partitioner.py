"""Kafka's default partitioner for keyed messages: murmur2 of the key, made positive, modulo the
partition count (Java's ``BuiltInPartitioner.partitionForKey``, librdkafka's ``murmur2_random`` for
non-null keys).

Vectorised with numpy over a batch of keys: keys of one length are hashed together as rows of a
uint32 matrix, whose arithmetic wraps modulo 2**32 like Java's ``int``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SEED = 0x9747B28C
MULTIPLIER = np.uint32(0x5BD1E995)


def murmur2(keys: Sequence[bytes]) -> np.ndarray:
    """Kafka's ``Utils.murmur2`` of each key, as uint32 (Java's int, read unsigned)."""
    hashes = np.empty(len(keys), dtype=np.uint32)
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        hashes[rows] = _murmur2_of_length([keys[row] for row in rows.tolist()], length)
    return hashes


def partitions_for_keys(keys: Sequence[bytes], partition_count: int) -> np.ndarray:
    """The partition Kafka's producers give each key: ``toPositive(murmur2(key)) % partition_count``."""
    return (murmur2(keys) & np.uint32(0x7FFFFFFF)).astype(np.int64) % partition_count


def _murmur2_of_length(keys: list[bytes], length: int) -> np.ndarray:
    """murmur2 of keys that are all ``length`` bytes long."""
    data = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), length)
    hashes = np.full(len(keys), (SEED ^ length) & 0xFFFFFFFF, dtype=np.uint32)
    words, tail = divmod(length, 4)
    blocks = np.ascontiguousarray(data[:, : words * 4]).view("<u4")  # little-endian 4-byte blocks
    for column in range(words):
        block = blocks[:, column] * MULTIPLIER
        block ^= block >> 24
        block *= MULTIPLIER
        hashes *= MULTIPLIER
        hashes ^= block
    if tail:
        for byte in reversed(range(tail)):
            hashes ^= data[:, words * 4 + byte].astype(np.uint32) << (8 * byte)
        hashes *= MULTIPLIER
    hashes ^= hashes >> 13
    hashes *= MULTIPLIER
    hashes ^= hashes >> 15
    return hashes
