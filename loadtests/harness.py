"""What every benchmark shares: the machine it ran on, and a cluster scoped to one run."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import platform
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from coordctl.local import ClusterState, start_local_cluster, stop_local_cluster
from coordctl.namespace import purge_namespace
from shared.settings import Settings, WorkerMode


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the figures depend on, recorded next to them."""
    versions = {}
    for package in ("aio-pika", "redis", "uvicorn", "locust"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "cores": os.cpu_count(),
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "load_average_at_start": list(os.getloadavg()),
    }


@contextmanager
def scoped_cluster(
    settings: Settings,
    *,
    workers: int,
    mode: WorkerMode,
    pool_size: int = 0,
    worker_python: str = "",
    worker_env: dict[str, str] | None = None,
) -> Iterator[ClusterState]:
    """A real local cluster in the settings' namespace, stopped by pid and purged after."""
    state = start_local_cluster(
        settings,
        workers=workers,
        mode=mode,
        pool_size=pool_size,
        python=sys.executable,
        worker_python=worker_python,
        worker_env=worker_env,
    )
    try:
        yield state
    finally:
        stop_local_cluster(settings.run_dir, timeout_s=15)
        # A failed purge must not hide the run's own outcome; leftovers carry the namespace.
        with contextlib.suppress(Exception):
            asyncio.run(purge_namespace(settings))
