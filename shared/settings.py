"""One typed settings object, read once from ``COORD_*`` environment variables.

Every service, the launcher and the tests receive a :class:`Settings`; nothing else
reads the environment, so a cluster is fully described by its environment.
"""

from __future__ import annotations

import os
import socket
from enum import StrEnum
from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr, computed_field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.cpus import pool_size_for_this_process
from shared.names import Names


class WorkerMode(StrEnum):
    """Where a worker runs the CPU step of a job."""

    BLOCKING = "blocking"
    THREADS = "threads"
    PROCESSES = "processes"
    INTERPRETERS = "interpreters"
    """Subinterpreters with a GIL each, in one process: Python 3.12+ (see executors)."""


class LogFormat(StrEnum):
    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class Settings(BaseSettings):
    """Everything a service needs to know, with safe local defaults."""

    model_config = SettingsConfigDict(
        env_prefix="COORD_", extra="ignore", frozen=True, env_ignore_empty=True
    )

    namespace: str = Field(
        default="coord",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$",
        description="Prefix of every queue, exchange and Redis key, so clusters share servers.",
    )
    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    instance: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8000, ge=1, le=65535)
    gateways: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Gateway processes serving gateway_port, each with its own socket "
        "(SO_REUSEPORT), connections, instance name and heartbeat; the kernel spreads new "
        "connections over them. Above 1, `python -m services.gateway` starts and watches "
        "that many (a container's way); the local launcher starts them as members itself.",
    )
    gateway_index: int = Field(
        default=0,
        ge=0,
        le=64,
        description="k >= 1: this process is gateway k of `gateways` (set by whoever started "
        "the group); 0: it is the whole gateway, alone or the group's supervisor.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="When set, write endpoints require the X-API-Key header."
    )
    max_backlog: int = Field(
        default=200_000,
        ge=1,
        description="Jobs waiting in the jobs queue above which the gateway answers 503.",
    )
    publish_window: int = Field(
        default=512, ge=1, le=100_000, description="Publishes awaiting their confirm at once."
    )
    max_wait_s: float = Field(default=60.0, ge=0, le=600)
    publish_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long a publish waits for the broker's confirm before it counts as "
        "failed: the gateway answers 503, a worker leaves the job to redelivery. Bounds the "
        "wait under a broker memory or disk alarm, which blocks publishers.",
    )

    worker_mode: WorkerMode = WorkerMode.PROCESSES
    pool_size: int = Field(
        default=0,
        ge=0,
        le=256,
        description="0 means one per CPU this process may use: affinity and cgroup quota.",
    )
    runners: int = Field(default=64, ge=1, le=10_000)
    prefetch: int = Field(default=0, ge=0, le=65_535, description="0 means twice the runners.")
    worker_ack_multiple: bool = Field(
        default=True,
        description="Ack the jobs whose results were confirmed in one loop turn with one "
        "multiple ack up to the highest tag below which every unsettled tag is finished; "
        "otherwise each on its own.",
    )
    max_attempts: int = Field(default=3, ge=1, le=20)
    retry_backoff_s: float = Field(
        default=0.2,
        gt=0,
        le=60,
        description="First retry's delay, doubled per attempt; rounded down to one of the "
        "fixed delay queues (0.1 s to 60 s). 0 is refused: it used to park retries forever.",
    )
    retry_max_delay_s: float = Field(
        default=30.0,
        ge=0.1,
        le=60,
        description="Cap of a retry's or deferral's delay; 60 s, the longest delay queue, at most.",
    )
    drain_timeout_s: float = Field(default=20.0, ge=0, le=600)
    chaos_fail_n: int = Field(
        default=0,
        ge=0,
        description="Fault injection for chaos tests and demos: CPU steps of jobs whose n "
        "equals this raise, exercising retries and dead-lettering. 0 (the default) is off.",
    )

    dead_max_length: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="Dead letters kept in the dead-letter queue; beyond it the oldest are "
        "dropped (x-max-length, overflow drop-head).",
    )
    dead_ttl_s: int = Field(
        default=7 * 86_400,
        ge=60,
        le=365 * 86_400,
        description="How long a dead letter is kept (x-message-ttl) for `cluster dead`.",
    )

    aggregator_batch: int = Field(default=500, ge=1, le=10_000)
    aggregator_prefetch: int = Field(default=2000, ge=1, le=65_535)
    aggregator_ack_multiple: bool = Field(
        default=True,
        description="Ack a folded slice with one multiple ack when exactly its messages are "
        "the channel's unsettled ones up to its last; otherwise each on its own.",
    )
    batch_ttl_s: int = Field(
        default=86_400,
        ge=5,
        description="A batch's state expires this long after its last activity (creation, a "
        "folded result, done).",
    )

    redis_max_connections: int = Field(default=256, ge=4, le=10_000)
    redis_hiredis: bool = Field(
        default=True,
        description="When the hiredis package is installed, pack Redis commands with it (C) "
        "and parse replies with it; otherwise with redis-py's Python code "
        "(shared/redis_client.py).",
    )
    metrics_host: str | None = Field(
        default=None,
        description="Address of a worker's or aggregator's /metrics; unset = gateway_host, so "
        "an image that serves the gateway on 0.0.0.0 serves metrics there too.",
    )
    metrics_port: int = Field(
        default=9100,
        ge=0,
        le=65535,
        description="Port of a worker's or aggregator's /metrics; 0 = off. The gateway "
        "serves /metrics on its HTTP port.",
    )

    heartbeat_s: float = Field(default=1.0, gt=0, le=60)
    gc_freeze: bool = Field(
        default=True,
        description="Once a service has started, move every object it holds to the "
        "collector's permanent generation, so a full collection later walks only what was "
        "made since (shared/gcfreeze.py).",
    )
    gc_pause_log_ms: float = Field(
        default=10.0,
        ge=0,
        description="Log a `gc_pause` line for every garbage collection that takes at least "
        "this much CPU time, the loop stopped meanwhile (shared/gcpauses.py); 0 = off.",
    )
    loop_lag_interval_s: float = Field(
        default=0.05,
        gt=0,
        le=5,
        description="How often the loop-lag monitor samples while its loop is busy (used a "
        "tenth of its thread's time since the last sample).",
    )
    loop_lag_idle_interval_s: float = Field(
        default=0.25,
        gt=0,
        le=5,
        description="How often it samples while its loop idles: each sample wakes an idle "
        "process, which costs it more CPU than the sample itself (shared/looplag.py).",
    )

    run_dir: Path = Field(
        default=Path(".run"), description="Where the local launcher keeps pids, state and logs."
    )

    log_level: str = Field(default="info", pattern=r"(?i)^(debug|info|warning|error)$")
    log_format: LogFormat = LogFormat.AUTO

    @computed_field  # type: ignore[prop-decorator]
    @property
    def effective_pool_size(self) -> int:
        return self.pool_size or pool_size_for_this_process()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def effective_prefetch(self) -> int:
        return self.prefetch or 2 * self.runners

    def replace(self, **changes: object) -> Settings:
        """A validated copy with ``changes`` applied (``model_copy`` would skip validation)."""
        current = {name: getattr(self, name) for name in type(self).model_fields}
        return type(self).model_validate({**current, **changes})

    @computed_field  # type: ignore[prop-decorator]
    @property
    def effective_metrics_host(self) -> str:
        return self.metrics_host or self.gateway_host

    @cached_property
    def names(self) -> Names:
        return Names(self.namespace)


def secret_env_names() -> frozenset[str]:
    """The environment variables holding secrets (URLs with passwords, the API key)."""
    return frozenset(
        f"COORD_{name.upper()}"
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    )


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; ``overrides`` win (used by tests and the launcher)."""
    return Settings(**overrides)  # type: ignore[arg-type]
