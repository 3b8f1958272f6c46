"""What happens to a job that did not finish: the worker's failure rules, as one pure function.

``decide`` reads the job, the error and the settings and returns what to do; the consumer only
carries it out (publish, ack, nack, reject, count). Nothing here touches a server, so every
rule is unit-tested case by case.

- A message that does not decode is dead-lettered at once: redelivering it cannot help.
- A Redis error is the cluster's fault, not the job's: the job is deferred through a delay
  queue with a backoff capped at ``MAX_DEFER_S`` for as long as the outage lasts, and keeps
  its attempts for failures of its own.
- Any other step failure is retried through a delay queue with a doubling, capped backoff
  while attempts are left; then the job is dead-lettered with a failed result, so that its
  batch still completes.
- A result or retry publish the broker refused or did not confirm, on a channel that stays
  open, gives the job back to the queue after a short pause: it is not the job's fault
  either, and holding it would pin a prefetch slot until the channel closes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

from redis.exceptions import RedisError

from shared.jobs import Job
from shared.names import retry_delay_ms
from shared.settings import Settings

MAX_DEFER_S = 5.0
REFUSED_PAUSE_S = 0.5


class Stage(StrEnum):
    """Where the error came from: the job's steps, or the worker's own publishes."""

    STEP = "step"
    PUBLISH = "publish"


@dataclass(frozen=True)
class Later:
    """Publish ``job`` to the delay queue ``queue``, then ack: it is back after ``delay_s``."""

    job: Job
    queue: str
    delay_s: float


class Retry(Later):
    """Spends an attempt: ``job`` has its attempt counted up."""


class Defer(Later):
    """Keeps the attempts: ``job`` has its deferrals counted up."""


@dataclass(frozen=True)
class Requeue:
    """Give the message back to the jobs queue (nack with requeue) after ``pause_s``."""

    pause_s: float


@dataclass(frozen=True)
class DeadLetter:
    """Reject without requeue; ``report`` says a failed result is published first."""

    reason: str
    report: bool


Decision = Retry | Defer | Requeue | DeadLetter


def backoff_s(settings: Settings, exponent: int, cap_s: float = float("inf")) -> float:
    """``retry_backoff_s`` doubled ``exponent`` times, capped by ``retry_max_delay_s`` (and
    ``cap_s``), as one of the fixed delays: 20 attempts once meant a 14.6-hour wait."""
    wanted = settings.retry_backoff_s * 2 ** min(exponent, 16)
    capped = min(wanted, cap_s, settings.retry_max_delay_s)
    return retry_delay_ms(capped) / 1000


def decide(
    job: Job | None, error: BaseException, settings: Settings, stage: Stage = Stage.STEP
) -> Decision:
    """The fate of the message whose handling raised ``error``; ``job`` is None when the
    message did not decode. ``job`` itself is never changed: a retry carries a copy."""
    if stage == Stage.PUBLISH:
        return Requeue(pause_s=REFUSED_PAUSE_S)
    if job is None:
        return DeadLetter(reason=str(error), report=False)
    if isinstance(error, RedisError):
        delay_s = backoff_s(settings, job.deferrals + 1, cap_s=MAX_DEFER_S)
        return Defer(
            job=dataclasses.replace(job, deferrals=job.deferrals + 1),
            queue=settings.names.delay_queue(retry_delay_ms(delay_s)),
            delay_s=delay_s,
        )
    if job.attempt < settings.max_attempts:
        delay_s = backoff_s(settings, job.attempt - 1)
        return Retry(
            job=dataclasses.replace(job, attempt=job.attempt + 1),
            queue=settings.names.delay_queue(retry_delay_ms(delay_s)),
            delay_s=delay_s,
        )
    return DeadLetter(reason=repr(error), report=True)
