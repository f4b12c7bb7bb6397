"""One retry policy for the stream services: which errors are worth another attempt, and the backoff.

An error is worth retrying when a later attempt can get past it: a broker or a database that is down
or restarting, a request that timed out, a librdkafka call that blocked (the detector retries its
whole session, on fresh clients). It is not when the attempt can never succeed, above all a consumer
group commit for partitions that a rebalance took away (aiokafka's ``CommitFailedError``,
``IllegalStateError``): retrying it would block the service forever, while the partitions' new owner
re-reads them from the last committed offset anyway. Such an error is raised at once, for the caller
to end that piece of work.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiokafka.errors
import asyncpg
import confluent_kafka
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception

from fraudstream.errors import FraudstreamError
from fraudstream.logs import fields

logger = logging.getLogger(__name__)

T = TypeVar("T")

BACKOFF_S = (0.5, 1, 2, 5, 10)

# aiokafka marks these not retriable, yet a later attempt gets past them: a request that timed out
# while a broker restarts, no broker reachable yet.
_AIOKAFKA_TRANSIENT = (
    aiokafka.errors.KafkaTimeoutError,
    aiokafka.errors.KafkaUnavailableError,
    aiokafka.errors.BrokerNotAvailableError,
)
_TRANSIENT = (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


def worth_retrying(error: BaseException) -> bool:
    """Whether a later attempt can succeed where this one raised ``error``."""
    if isinstance(error, FraudstreamError):
        return error.retriable
    if isinstance(error, confluent_kafka.KafkaException):
        # The detector retries with fresh clients, which get past even a fatal error (a fenced producer).
        return True
    if isinstance(error, aiokafka.errors.KafkaError):
        return error.retriable or isinstance(error, _AIOKAFKA_TRANSIENT)
    return isinstance(error, _TRANSIENT)


class _Stopped(Exception):
    """The service is stopping: no further attempt."""


def retry(
    action: Callable[[], T],
    what: str,
    stop: threading.Event,
    on_failure: Callable[[BaseException], None] | None = None,
) -> T | None:
    """``action()`` until it returns, backing off after each failure worth retrying.

    Errors not worth retrying are raised at once. The backoff ends early when ``stop`` is set; then
    ``None`` is returned instead of a further attempt.
    """

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise _Stopped

    try:
        return Retrying(sleep=sleep, **_policy(what, on_failure))(action)
    except _Stopped:
        return None


async def retry_async(
    action: Callable[[], Awaitable[T]],
    what: str,
    stop: asyncio.Event,
    on_failure: Callable[[BaseException], None] | None = None,
) -> T:
    """``await action()`` until it returns, backing off after each failure worth retrying.

    Errors not worth retrying are raised at once; so is the last failure once ``stop`` is set.
    """

    async def attempt() -> T:  # tenacity awaits coroutine functions only, not callables returning awaitables
        return await action()

    policy = AsyncRetrying(stop=lambda _: stop.is_set(), reraise=True, **_policy(what, on_failure))
    return await policy(attempt)


def _policy(what: str, on_failure: Callable[[BaseException], None] | None) -> dict[str, object]:
    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if on_failure is not None and error is not None:
            on_failure(error)
        logger.warning(
            f"{what} failed, retrying", extra=fields(error=repr(error), retry_in_s=state.upcoming_sleep)
        )

    return {
        "retry": retry_if_exception(worth_retrying),
        "wait": _backoff,
        "before_sleep": before_sleep,
    }


def _backoff(state: RetryCallState) -> float:
    return BACKOFF_S[min(state.attempt_number - 1, len(BACKOFF_S) - 1)]
