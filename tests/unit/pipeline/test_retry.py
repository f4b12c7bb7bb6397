"""Which errors the services retry, and how: the one retry policy of the detector and the sink."""

from __future__ import annotations

import asyncio
import threading

import pytest
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaConnectionError,
    KafkaTimeoutError,
    RebalanceInProgressError,
    RequestTimedOutError,
)
from asyncpg import CannotConnectNowError
from confluent_kafka import KafkaError, KafkaException

from fraudstream.contracts.messages import BadMessage
from fraudstream.errors import KafkaCallTimeout, ReadToEndTimeout
from fraudstream.pipeline import retry as retry_module
from fraudstream.pipeline.retry import retry, retry_async, worth_retrying


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry_module, "BACKOFF_S", (0.0,))


@pytest.mark.parametrize(
    "error",
    [
        KafkaConnectionError("broker down"),
        RequestTimedOutError(),
        KafkaTimeoutError(),  # aiokafka says not retriable; a restarting broker times requests out
        KafkaException(KafkaError(KafkaError._TRANSPORT)),
        KafkaException(KafkaError(KafkaError._FENCED)),  # fresh clients get past a fenced producer
        KafkaCallTimeout("commit_transaction blocked for 20 s"),
        ReadToEndTimeout("partitions [0] not read to their end in 30 s"),
        CannotConnectNowError("the database system is starting up"),
        ConnectionRefusedError(),
        TimeoutError(),
    ],
)
def test_errors_a_later_attempt_gets_past_are_worth_retrying(error):
    assert worth_retrying(error)


@pytest.mark.parametrize(
    "error",
    [
        CommitFailedError("the group has already rebalanced"),
        IllegalStateError("Partition TopicPartition(topic='scoring', partition=1) is not assigned"),
        RebalanceInProgressError(),
        BadMessage("not JSON"),
        ValueError("a bug"),
    ],
)
def test_errors_that_can_never_succeed_are_not(error):
    assert not worth_retrying(error)


class Flaky:
    """Raises the given errors in turn, then returns "done"; counts its calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_retry_backs_off_until_the_action_succeeds_reporting_each_failure():
    action, failures = Flaky(KafkaCallTimeout("a"), KafkaException(KafkaError(KafkaError._TRANSPORT))), []
    assert retry(action, "test", threading.Event(), failures.append) == "done"
    assert action.calls == 3
    assert [type(error) for error in failures] == [KafkaCallTimeout, KafkaException]


def test_retry_raises_an_error_not_worth_retrying_at_once():
    action = Flaky(ValueError("a bug"))
    with pytest.raises(ValueError):
        retry(action, "test", threading.Event())
    assert action.calls == 1


def test_retry_returns_without_a_further_attempt_once_stopped():
    stop = threading.Event()
    stop.set()
    action = Flaky(KafkaCallTimeout("a"))
    assert retry(action, "test", stop) is None
    assert action.calls == 1


def test_retry_async_gives_up_a_commit_a_rebalance_made_impossible_but_retries_a_timeout():
    async def scenario() -> tuple[int, int]:
        stop = asyncio.Event()
        transient = Flaky(RequestTimedOutError())
        assert await retry_async(_async(transient), "commit", stop) == "done"
        impossible = Flaky(CommitFailedError("rebalanced"))
        with pytest.raises(CommitFailedError):
            await retry_async(_async(impossible), "commit", stop)
        return transient.calls, impossible.calls

    assert asyncio.run(scenario()) == (2, 1)


def test_retry_async_raises_the_last_failure_once_stopped():
    async def scenario() -> int:
        stop = asyncio.Event()
        stop.set()
        action = Flaky(KafkaConnectionError("broker down"), KafkaConnectionError("still down"))
        with pytest.raises(KafkaConnectionError, match="broker down"):
            await retry_async(_async(action), "start", stop)
        return action.calls

    assert asyncio.run(scenario()) == 1


def _async(action: Flaky):
    async def call() -> str:
        return action()

    return call
