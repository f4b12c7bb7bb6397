"""The project's own errors, under one base, each saying whether a later attempt can succeed.

As in ``aiokafka.errors``, ``retriable`` is a class attribute: ``pipeline.retry`` reads it to decide
between backing off and trying again (the service starting over with fresh clients) and giving up.
"""

from __future__ import annotations


class FraudstreamError(Exception):
    """Base of fraudstream's own errors; not retriable unless a subclass says so."""

    retriable = False


class KafkaCallTimeout(FraudstreamError):
    """A librdkafka call blocked past its own timeout (librdkafka issues 5456, 5511).

    Retriable with fresh clients: the call is left behind, and the new producer's
    ``init_transactions`` fences the old one.
    """

    retriable = True


class ReadToEndTimeout(FraudstreamError):
    """Partitions were not read to their end in time (the detector's state changelog, a topic shown by
    the UI); retriable with fresh clients."""

    retriable = True


class SchemaMismatch(FraudstreamError):
    """Two definitions of the same data disagree: a programming error, raised when the module loads."""


class FeatureStateError(FraudstreamError, ValueError):
    """Per-customer feature state that this code cannot read: another state version, or damaged.

    Not retriable: a changelog written by an older detector must be reset (it is not migrated)."""
