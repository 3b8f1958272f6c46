"""The worker's failure rules, case by case: what ``decide`` returns for each error.

Also the delays: validated, capped, and always one of the fixed delay queues."""

from __future__ import annotations

import aiormq.exceptions
import pytest
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

from services.worker.decide import (
    MAX_DEFER_S,
    REFUSED_PAUSE_S,
    DeadLetter,
    Defer,
    Requeue,
    Retry,
    Stage,
    backoff_s,
    decide,
)
from shared.jobs import InvalidMessage, Job, JobKind
from shared.names import RETRY_DELAYS_MS, Names, retry_delay_ms
from shared.settings import Settings, load_settings


def test_a_zero_backoff_is_refused() -> None:
    with pytest.raises(ValidationError, match="retry_backoff_s"):
        load_settings(retry_backoff_s=0)
    with pytest.raises(ValidationError, match="retry_max_delay_s"):
        load_settings(retry_max_delay_s=3600)


def test_delays_are_capped_and_tiered() -> None:
    settings = load_settings(retry_backoff_s=0.2, max_attempts=20)
    delays = [backoff_s(settings, attempt - 1) for attempt in range(1, 21)]
    assert delays[:4] == [0.1, 0.25, 0.5, 1.0]
    assert max(delays) == settings.retry_max_delay_s == 30
    assert all(round(d * 1000) in RETRY_DELAYS_MS for d in delays)
    assert sum(delays) < 20 * 30  # was 0.2 * (2**20 - 1) s, about 58 hours in all
    assert max(backoff_s(settings, n, cap_s=MAX_DEFER_S) for n in range(50)) <= MAX_DEFER_S


def test_a_delay_maps_to_the_longest_queue_at_or_below_it() -> None:
    assert retry_delay_ms(0.001) == 100
    assert retry_delay_ms(0.3) == 250
    assert retry_delay_ms(1e9) == 60_000
    assert len(set(Names("ns").delay_queues)) == len(RETRY_DELAYS_MS)


@pytest.fixture
def rules() -> Settings:
    return load_settings(namespace="unit", retry_backoff_s=0.2, max_attempts=3)


def a_job(**fields: int) -> Job:
    return Job("b.1", "b", JobKind.CPU, n=100, io_ms=0, submitted_at=0.0, **fields)


def test_a_failed_step_is_retried_through_a_delay_queue_on_a_copy(rules: Settings) -> None:
    job = a_job()
    decision = decide(job, ValueError("boom"), rules)
    assert decision == Retry(job=a_job(attempt=2), queue=rules.names.delay_queue(100), delay_s=0.1)
    assert job.attempt == 1


def test_each_retry_waits_longer(rules: Settings) -> None:
    decision = decide(a_job(attempt=2), ValueError("boom"), rules)
    assert isinstance(decision, Retry)
    assert decision.job.attempt == 3
    assert decision.delay_s == 0.25
    assert decision.queue == rules.names.delay_queue(250)


def test_the_last_attempt_dead_letters_with_a_failed_result(rules: Settings) -> None:
    decision = decide(a_job(attempt=3), ValueError("boom"), rules)
    assert decision == DeadLetter(reason="ValueError('boom')", report=True)


def test_a_builtin_timeout_in_a_step_is_the_job_s_failure(rules: Settings) -> None:
    """TimeoutError also means a refused publish, but only where the worker publishes."""
    assert isinstance(decide(a_job(), TimeoutError(), rules), Retry)


@pytest.mark.parametrize("attempt", [1, 3, 50])
def test_a_redis_error_defers_without_spending_an_attempt(rules: Settings, attempt: int) -> None:
    job = a_job(attempt=attempt)
    decision = decide(job, RedisConnectionError("down"), rules)
    assert isinstance(decision, Defer)
    assert decision.job == a_job(attempt=attempt, deferrals=1)
    assert decision.queue == rules.names.delay_queue(round(decision.delay_s * 1000))
    assert job.deferrals == 0


def test_deferrals_back_off_up_to_their_own_cap(rules: Settings) -> None:
    delays = []
    job = a_job()
    for _ in range(12):
        decision = decide(job, RedisConnectionError("down"), rules)
        assert isinstance(decision, Defer)
        delays.append(decision.delay_s)
        job = decision.job
    assert job.deferrals == 12 and job.attempt == 1
    assert delays == sorted(delays)
    assert delays[0] == 0.25 and max(delays) == MAX_DEFER_S


def test_an_undecodable_message_is_dead_lettered_without_a_result(rules: Settings) -> None:
    decision = decide(None, InvalidMessage("not msgpack"), rules)
    assert decision == DeadLetter(reason="not msgpack", report=False)


@pytest.mark.parametrize(
    "error", [aiormq.exceptions.DeliveryError(None, None), TimeoutError()], ids=["nack", "timeout"]
)
def test_a_refused_publish_gives_the_job_back_after_a_pause(
    rules: Settings, error: Exception
) -> None:
    for job in (None, a_job(attempt=3)):
        assert decide(job, error, rules, Stage.PUBLISH) == Requeue(pause_s=REFUSED_PAUSE_S)
