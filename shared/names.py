"""Every queue, exchange and Redis key name, built from the namespace in one place."""

from __future__ import annotations

from dataclasses import dataclass


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
        """Holds a failed job for the backoff delay, then dead-letters it back to the jobs queue."""
        return f"{self.namespace}.retry"

    @property
    def dead_exchange(self) -> str:
        return f"{self.namespace}.dlx"

    @property
    def queues(self) -> tuple[str, ...]:
        return (self.jobs_queue, self.results_queue, self.dead_queue, self.retry_queue)

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

    @property
    def counters(self) -> str:
        return f"{self.namespace}:counters"
