"""Every queue, exchange and Redis key name, built from the namespace in one place."""

from __future__ import annotations

from dataclasses import dataclass

RETRY_DELAYS_MS: tuple[int, ...] = (100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000)
"""The delays a retry or deferral can wait, one queue each (a queue-wide TTL), so every
message in a queue expires in the order it arrived and a long delay never holds up a short
one behind it, as it would in one queue of per-message expirations."""


def retry_delay_ms(delay_s: float) -> int:
    """The delay queue for ``delay_s``: the longest at or below it, at least the shortest."""
    wanted_ms = delay_s * 1000
    return max((d for d in RETRY_DELAYS_MS if d <= wanted_ms), default=RETRY_DELAYS_MS[0])


@dataclass(frozen=True)
class Names:
    namespace: str

    @property
    def jobs_queue(self) -> str:
        return f"{self.namespace}.jobs"

    @property
    def results_queue(self) -> str:
        return f"{self.namespace}.results"

    @property
    def dead_queue(self) -> str:
        return f"{self.namespace}.dead"

    @property
    def retry_queue(self) -> str:
        """The name under which the delay queues' depths are summed; also the single retry
        queue of earlier versions, whose leftovers expire back to the jobs queue."""
        return f"{self.namespace}.retry"

    def delay_queue(self, delay_ms: int) -> str:
        """Holds a job for ``delay_ms`` (the queue TTL), then dead-letters it to the jobs queue."""
        return f"{self.namespace}.retry.{delay_ms}ms"

    @property
    def delay_queues(self) -> tuple[str, ...]:
        return tuple(self.delay_queue(ms) for ms in RETRY_DELAYS_MS)

    @property
    def dead_exchange(self) -> str:
        return f"{self.namespace}.dlx"

    @property
    def queues(self) -> tuple[str, ...]:
        """The queues as a person sees them; ``retry`` stands for all the delay queues."""
        return (self.jobs_queue, self.results_queue, self.dead_queue, self.retry_queue)

    @property
    def all_queues(self) -> tuple[str, ...]:
        return (*self.queues, *self.delay_queues)

    @property
    def redis_prefix(self) -> str:
        return f"{self.namespace}:"

    def batch(self, batch_id: str) -> str:
        """Hash of the batch's aggregate: expected, completed, failed, sum, min, max, status,
        jobs per worker and the latency histogram."""
        return f"{self.namespace}:batch:{batch_id}"

    def batch_seen(self, batch_id: str) -> str:
        """Set of job ids already folded into the batch: the exactly-once guard."""
        return f"{self.namespace}:batch:{batch_id}:seen"

    @property
    def batch_done_channel(self) -> str:
        """Pub/sub channel on which the aggregator announces each finished batch id."""
        return f"{self.namespace}:batch-done"

    @property
    def batches_index(self) -> str:
        """Sorted set of batch ids by last activity, for listings and dashboards; entries
        older than the batch TTL are trimmed at each new batch, so it holds the live ones."""
        return f"{self.namespace}:batches"

    def io_touch(self, job_id: str) -> str:
        return f"{self.namespace}:io:{job_id}"

    def race_counter(self, variant: str) -> str:
        """Counter of the comparison's race demonstration (one per variant)."""
        return f"{self.namespace}:race:{variant}"

    @property
    def instances(self) -> str:
        """Hash of instance name -> JSON heartbeat of every running service instance."""
        return f"{self.namespace}:instances"
