"""Kafka's murmur2 partitioner, against Kafka's own test vectors (``UtilsTest.testMurmur2``)."""

from __future__ import annotations

import numpy as np

from fraudstream.pipeline.partitioner import murmur2, partitions_for_keys

# Kafka's clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java: key -> murmur2 (Java int).
KAFKA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def test_murmur2_gives_kafkas_values_for_keys_of_every_tail_length():
    assert murmur2(list(KAFKA_VECTORS)).view(np.int32).tolist() == list(KAFKA_VECTORS.values())


def test_a_batch_of_mixed_lengths_hashes_each_key_as_alone():
    keys = [b"", b"a", b"ab", b"abc", b"abcd", b"abcde", b"21", b"foobar"] * 3
    together = murmur2(keys)
    alone = [int(murmur2([key])[0]) for key in keys]
    assert together.tolist() == alone


def test_the_partition_is_the_positive_hash_modulo_the_count():
    keys = list(KAFKA_VECTORS)
    expected = [(value & 0x7FFFFFFF) % 7 for value in KAFKA_VECTORS.values()]
    assert partitions_for_keys(keys, 7).tolist() == expected
