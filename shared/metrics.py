"""Every Prometheus metric of the cluster, defined in one place (prefix ``coord_``).

Each service process builds one :class:`Metrics` on a registry of its own and records
through its methods; the gateway serves the registry on its HTTP port at ``/metrics``,
workers and the aggregator on ``metrics_port`` (:meth:`Metrics.serve`).

Every series carries ``service`` and ``instance`` (the instance name the heartbeat and
the logs use, so a figure can be matched to a log line), worker series also ``mode``,
job series ``kind``. Prometheus renames a scraped ``instance`` label to
``exported_instance`` unless the scrape job sets ``honor_labels: true``.

Workers need no multiprocess mode: in ``processes`` mode the CPU step runs in pool
processes, but every figure is recorded in the worker's main process. The step is timed
there around the awaited executor call, and counters change there once the result is
back. Pool processes never touch a metric, so the main process's registry is complete and
prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, one file per pid,
merged at scrape time) would only add cost.

Gateways do, when several share one port (``COORD_GATEWAYS``): a scrape of that port
reaches one of them, at the kernel's choice, and must still count every one. Whoever
starts the group sets ``PROMETHEUS_MULTIPROC_DIR`` for its processes, each records into
its own files there, and any of them answers ``/metrics`` with all the files merged; each
series keeps its ``instance``, so the figures stay per process. A metrics port per process
would leave the one port a scraper knows showing a random half. Process collectors
(CPU, memory) do not work in that mode and are left out; the queue depths, read at
scrape time, come from the process that answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from shared.looplag import LoopLagMonitor

STEP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

SERVICE = ("service", "instance")
WORKER = (*SERVICE, "mode")
JOB = (*WORKER, "kind")


MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's own switch, read once when it is imported: not a setting of ours,
since it must be in a process's environment before its first import."""


def multiprocess_dir() -> str | None:
    """The folder this process records its metrics into, shared with its siblings, if any."""
    return os.environ.get(MULTIPROCESS_DIR_ENV) or None


def forget_process(pid: int) -> None:
    """Drop the live gauges of a process of the group that has exited (its counters stay:
    a total must not fall when a process is replaced)."""
    if (path := multiprocess_dir()) is not None:
        mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


def step_family(step: str) -> str:
    """``io_before`` and ``io_after`` of a mixed job are I/O steps like any other."""
    return "io" if step.startswith("io") else step


@dataclass
class MetricsServer:
    """The HTTP server of :meth:`Metrics.serve`, running in a daemon thread."""

    port: int
    close: Callable[[], None]


class _CallbackGauges(Collector):
    """A gauge whose labelled values are read from a callable at scrape time.

    Used where the figure already lives elsewhere (the gateway's cached queue depths), so
    there is no second copy to keep in step.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        label: str,
        base: Mapping[str, str],
        read: Callable[[], Mapping[str, float]],
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.label = label
        self.base = dict(base)
        self.read = read

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=[*self.base, self.label])
        for key, value in sorted(self.read().items()):
            family.add_metric([*self.base.values(), key], value)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.name, self.documentation, labels=[*self.base, self.label])


class Metrics:
    """The metrics every service process has, bound to its ``service``, ``instance`` and
    ``mode``; each role's subclass registers its own series, and only those."""

    SERVICE: ClassVar[str] = ""

    def __init__(
        self,
        instance: str,
        *,
        mode: str = "",
        registry: CollectorRegistry | None = None,
        process_metrics: bool = True,
    ) -> None:
        service = self.service = self.SERVICE
        self.instance = instance
        self.mode = mode
        self.registry = registry if registry is not None else CollectorRegistry()
        self.base = {"service": service, "instance": instance}
        self.worker_base = {**self.base, "mode": mode}
        self.children: dict[tuple[Counter | Histogram, tuple[str, ...]], Any] = {}
        self.shared_dir = multiprocess_dir()
        self.live_collectors: list[Collector] = []
        if process_metrics and self.shared_dir is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        r = self.registry
        self.loop_lag = Histogram(
            "coord_loop_lag_seconds",
            "How late the event loop woke a sleeping task: time it spent not yielding.",
            WORKER,
            registry=r,
            buckets=LAG_BUCKETS,
        )
        self.register(r)

    def register(self, r: CollectorRegistry) -> None:
        """Register the role's own series on ``r``."""

    @property
    def series_base(self) -> dict[str, str]:
        """The label values every series of this role starts with."""
        return self.base

    def child(self, metric: Counter | Histogram, *values: str) -> Any:
        """``metric``'s series for this process and ``values``, looked up once:
        ``labels()`` builds and checks the label tuple on every call, and these run on
        every job or request."""
        key = (metric, values)
        series = self.children.get(key)
        if series is None:
            series = self.children[key] = metric.labels(*self.series_base.values(), *values)
        return series

    def track_loop_lag(self, monitor: LoopLagMonitor) -> None:
        monitor.observers.append(self.loop_lag.labels(**self.worker_base).observe)

    def exposition(self) -> bytes:
        """This process's registry; in a group, every process's files merged instead, and
        this one's figures read at scrape time."""
        if self.shared_dir is None:
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=self.shared_dir)  # type: ignore[no-untyped-call]
        for collector in self.live_collectors:
            merged.register(collector)
        return generate_latest(merged)

    def serve_if_enabled(self, host: str, port: int) -> MetricsServer | None:
        """:meth:`serve` unless ``port`` is 0; a taken port ends the service with one line."""
        if port == 0:
            return None
        try:
            return self.serve(host, port)
        except OSError as exc:
            raise SystemExit(f"cannot serve /metrics on {host}:{port}: {exc.strerror}") from exc

    def serve(self, host: str, port: int) -> MetricsServer:
        """Serve ``/metrics`` from a daemon thread; scraping then never waits on the loop.

        A scrape reads values that the loop thread writes; prometheus_client guards every
        value with a lock, so a scrape during a burst sees consistent figures.
        """
        server, thread = start_http_server(port, addr=host, registry=self.registry)

        def close() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        return MetricsServer(port=server.server_address[1], close=close)


class WorkerMetrics(Metrics):
    """Jobs, steps and the CPU pool of a worker."""

    SERVICE = "worker"

    @property
    def series_base(self) -> dict[str, str]:
        return self.worker_base

    def register(self, r: CollectorRegistry) -> None:
        self.jobs_received = Counter(
            "coord_jobs_received", "Jobs a worker took from the jobs queue.", JOB, registry=r
        )
        self.jobs_completed = Counter(
            "coord_jobs_completed", "Jobs a worker ran and acked.", JOB, registry=r
        )
        self.jobs_failed = Counter(
            "coord_jobs_failed",
            "Jobs given up after their last attempt, or undecodable (kind 'invalid').",
            JOB,
            registry=r,
        )
        self.jobs_retried = Counter(
            "coord_jobs_retried",
            "Failed attempts sent back through the retry queue.",
            JOB,
            registry=r,
        )
        self.step_duration = Histogram(
            "coord_step_duration_seconds",
            "Duration of one job step (io or cpu), timed in the worker's main process.",
            (*JOB, "step"),
            registry=r,
            buckets=STEP_BUCKETS,
        )
        self.jobs_in_flight = Gauge(
            "coord_jobs_in_flight", "Jobs a runner task is handling now.", WORKER, registry=r
        )
        self.pool_busy = Gauge(
            "coord_pool_busy", "CPU steps running or waiting for a pool slot.", WORKER, registry=r
        )
        self.pool_size = Gauge(
            "coord_pool_size",
            "Threads or processes in the CPU pool (1 when blocking).",
            WORKER,
            registry=r,
        )

    def job_received(self, kind: str) -> None:
        self.child(self.jobs_received, kind).inc()

    def job_completed(self, kind: str, durations_ms: Mapping[str, float]) -> None:
        """Count a finished job and observe each of its steps."""
        self.child(self.jobs_completed, kind).inc()
        for step, ms in durations_ms.items():
            self.child(self.step_duration, kind, step_family(step)).observe(ms / 1000)

    def job_failed(self, kind: str) -> None:
        self.jobs_failed.labels(**self.worker_base, kind=kind).inc()

    def job_retried(self, kind: str) -> None:
        self.jobs_retried.labels(**self.worker_base, kind=kind).inc()

    def track_worker(self, in_flight: Callable[[], float], pool_busy: Callable[[], float]) -> None:
        """Read in-flight jobs and pool occupancy at scrape time."""
        self.jobs_in_flight.labels(**self.worker_base).set_function(in_flight)
        self.pool_busy.labels(**self.worker_base).set_function(pool_busy)

    def set_pool_size(self, size: int) -> None:
        self.pool_size.labels(**self.worker_base).set(size)


class GatewayMetrics(Metrics):
    """Batches accepted, HTTP requests, queue depths and batches in flight."""

    SERVICE = "gateway"

    def register(self, r: CollectorRegistry) -> None:
        self.batches_accepted = Counter(
            "coord_batches_accepted",
            "Batches the gateway accepted.",
            (*SERVICE, "kind"),
            registry=r,
        )
        self.jobs_accepted = Counter(
            "coord_jobs_accepted",
            "Jobs the gateway published, confirmed by the broker.",
            (*SERVICE, "kind"),
            registry=r,
        )
        self.batches_in_flight = Gauge(
            "coord_batches_in_flight",
            "Batches still running among the most recent ones.",
            SERVICE,
            registry=r,
            multiprocess_mode="liveall",
        )
        self.http_requests = Counter(
            "coord_http_requests",
            "HTTP requests answered, by route template.",
            (*SERVICE, "method", "route", "status"),
            registry=r,
        )
        self.http_duration = Histogram(
            "coord_http_request_duration_seconds",
            "Time to answer an HTTP request (long polls included).",
            (*SERVICE, "method", "route"),
            registry=r,
            buckets=HTTP_BUCKETS,
        )

    def track_queue_depths(self, depths: Callable[[], Mapping[str, float]]) -> None:
        """``coord_queue_depth{queue}``: ready messages per queue, read at scrape time."""
        collector = _CallbackGauges(
            "coord_queue_depth",
            "Messages ready in each queue (-1: queue missing).",
            "queue",
            self.base,
            depths,
        )
        self.registry.register(collector)
        self.live_collectors.append(collector)

    def batch_accepted(self, kind: str, jobs: int) -> None:
        self.child(self.batches_accepted, kind).inc()
        self.child(self.jobs_accepted, kind).inc(jobs)

    def set_batches_in_flight(self, count: int) -> None:
        self.batches_in_flight.labels(**self.base).set(count)

    def http_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.child(self.http_requests, method, route, str(status)).inc()
        self.child(self.http_duration, method, route).observe(seconds)


class AggregatorMetrics(Metrics):
    """What the fold did with each result."""

    SERVICE = "aggregator"

    def register(self, r: CollectorRegistry) -> None:
        self.results_folded = Counter(
            "coord_results_folded",
            "Results folded into their batch (exactly once).",
            SERVICE,
            registry=r,
        )
        self.results_duplicates = Counter(
            "coord_results_duplicates",
            "Redelivered results the fold absorbed.",
            SERVICE,
            registry=r,
        )
        self.results_orphans = Counter(
            "coord_results_orphans",
            "Results whose batch is unknown or expired.",
            SERVICE,
            registry=r,
        )
        self.batches_completed = Counter(
            "coord_batches_completed", "Batches the aggregator marked done.", SERVICE, registry=r
        )

    def fold_outcome(self, *, folded: int, duplicates: int, orphans: int, done: int) -> None:
        self.results_folded.labels(**self.base).inc(folded)
        self.results_duplicates.labels(**self.base).inc(duplicates)
        self.results_orphans.labels(**self.base).inc(orphans)
        self.batches_completed.labels(**self.base).inc(done)
