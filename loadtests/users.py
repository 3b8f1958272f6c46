"""Simulated clients of the gateway: submitters per job kind, and clients that wait on batches.

Submitters only ``POST /batches`` and move on, as a producer feeding a queue would. A
:class:`BatchWaiter` submits and then long-polls its batch until it is done, and reports
submit-to-done time as a ``BATCH`` request, so Locust's charts show the pipeline's latency
next to the HTTP latency of its requests.
"""

from __future__ import annotations

import random
import time
from typing import Any, ClassVar

from locust import FastHttpUser, task
from pydantic import ValidationError

from loadtests.names import BATCH_REQUEST_TYPE, WAIT_NAME, done_name, submit_name
from loadtests.profile import LoadProfile
from shared.api import BatchAccepted, BatchState, BatchStatus, Paths
from shared.jobs import JobKind


class BatchNotDone(Exception):
    """A waited batch ended badly (aborted, failed jobs) or did not finish in time."""


class PollFailed(Exception):
    """A status request failed; it is recorded as a failed GET, so the batch is not counted."""


def describe(response: Any) -> str:
    """One line for Locust's failure table: the connection error, or the status and body."""
    if getattr(response, "error", None) and not response.status_code:
        return f"no answer: {response.error!r}"
    return f"HTTP {response.status_code}: {(response.text or '')[:200]}"


class ClusterUser(FastHttpUser):
    """What every simulated client shares: the profile, think time and the submit request."""

    abstract = True
    profile: ClassVar[LoadProfile] = LoadProfile()
    connection_timeout = 10.0
    network_timeout = 75.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rng = random.Random()

    def wait_time(self) -> float:
        return self.rng.uniform(self.profile.think_min_s, self.profile.think_max_s)

    def submit(self, kind: JobKind) -> str | None:
        """``POST /batches``; the batch id on a 202, ``None`` after recording a failure."""
        body = self.profile.batch_body(kind, self.rng)
        with self.client.post(
            Paths.BATCHES,
            json=body,
            headers=self.profile.headers(),
            name=submit_name(kind),
            catch_response=True,
        ) as response:
            if response.status_code != 202:
                response.failure(describe(response))
                return None
            try:
                return BatchAccepted.model_validate_json(response.content).batch_id
            except ValidationError:
                response.failure("202 without a batch_id")
                return None


class Submitter(ClusterUser):
    """Submits batches of one kind without waiting for them."""

    abstract = True
    kind: ClassVar[JobKind]

    @task
    def submit_batch(self) -> None:
        self.submit(self.kind)


class CpuSubmitter(Submitter):
    kind = JobKind.CPU


class IoSubmitter(Submitter):
    kind = JobKind.IO


class MixedSubmitter(Submitter):
    kind = JobKind.MIXED


class BatchWaiter(ClusterUser):
    """Submits a batch of a kind drawn from the mix, then long-polls it until it is done."""

    @task
    def submit_and_wait(self) -> None:
        kind = self.profile.pick_kind(self.rng)
        started = time.perf_counter()
        batch_id = self.submit(kind)
        if batch_id is None:
            return
        try:
            error = self.wait_done(batch_id, deadline=started + self.profile.batch_timeout_s)
        except PollFailed:
            return
        self.environment.events.request.fire(
            request_type=BATCH_REQUEST_TYPE,
            name=done_name(kind),
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={"batch_id": batch_id},
        )

    def wait_done(self, batch_id: str, *, deadline: float) -> BatchNotDone | None:
        """``None`` once the batch is done, else the reason it will not be (in time)."""
        while (remaining := deadline - time.perf_counter()) > 0:
            wait_s = round(min(self.profile.wait_s, max(remaining, 0.1)), 3)
            with self.client.get(
                f"{Paths.of(Paths.BATCH, batch_id)}?wait={wait_s}",
                name=WAIT_NAME,
                catch_response=True,
            ) as response:
                if response.status_code != 200:
                    response.failure(describe(response))
                    raise PollFailed
                try:
                    status = BatchStatus.model_validate_json(response.content)
                except ValidationError:
                    response.failure("status answer is not a batch status")
                    raise PollFailed from None
            if status.status == BatchState.RUNNING:
                continue
            if status.status != BatchState.DONE:
                return BatchNotDone(f"batch ended {status.status}")
            if status.failed:
                return BatchNotDone(f"{status.failed} of {status.expected} jobs failed")
            return None
        return BatchNotDone(f"not done within {self.profile.batch_timeout_s:g} s")


USER_CLASSES: dict[str, type[ClusterUser]] = {
    JobKind.CPU.value: CpuSubmitter,
    JobKind.IO.value: IoSubmitter,
    JobKind.MIXED.value: MixedSubmitter,
    "waiter": BatchWaiter,
}


def configure_users(profile: LoadProfile) -> list[type[ClusterUser]]:
    """Apply ``profile`` to every user class and return those with a weight above 0."""
    ClusterUser.profile = profile
    active: list[type[ClusterUser]] = []
    for key, weight in profile.user_weights().items():
        user_class = USER_CLASSES[key]
        user_class.weight = weight
        if weight > 0:
            active.append(user_class)
    return active
