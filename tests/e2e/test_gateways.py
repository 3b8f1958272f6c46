"""Two gateway processes on one port (``cluster up --gateways 2``), through real processes.

A kept-alive connection stays with the process that accepted it, so a client is pinned to
one gateway; which one is read from the merged ``/metrics``: the instance whose accepted
jobs went up after the client's submit.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from coordctl.client import GatewayClient
from coordctl.servers import pid_alive
from shared.api import BatchState
from shared.jobs import BatchRequest, JobKind, JobParams
from shared.settings import Settings
from tests.e2e.test_cli import cluster

GATEWAYS = {"gateway-1", "gateway-2"}
ONE_JOB = BatchRequest(kind=JobKind.IO, count=1, params=JobParams(io_ms=0))


def accepted_by_instance(url: str) -> dict[str, float]:
    """``coord_jobs_accepted_total`` per gateway instance, from one scrape of the port."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "coord_jobs_accepted_total":
                instance = sample.labels["instance"]
                totals[instance] = totals.get(instance, 0) + sample.value
    return totals


def pinned_client(url: str) -> tuple[GatewayClient, str]:
    """A client whose one kept-alive connection is served by the gateway it names."""
    client = GatewayClient(url, timeout_s=30)
    before = accepted_by_instance(url)
    client.submit(ONE_JOB)
    after = accepted_by_instance(url)
    (instance,) = [name for name, value in after.items() if value > before.get(name, 0)]
    return client, instance


def clients_on_each_gateway(url: str, stack: ExitStack) -> dict[str, GatewayClient]:
    """New connections until each gateway holds one (the kernel hashes each connection)."""
    pinned: dict[str, GatewayClient] = {}
    for _ in range(40):
        client, instance = pinned_client(url)
        stack.callback(client.close)
        pinned.setdefault(instance, client)
        if set(pinned) == GATEWAYS:
            return pinned
    pytest.fail(f"40 connections all reached {sorted(pinned)}")


def session_pids(pids: Iterator[int] | list[int]) -> list[int]:
    """Every live process in the sessions these pids lead (what `cluster down` must end)."""
    leaders = set(pids)
    left = []
    for process in psutil.process_iter():
        try:
            if os.getsid(process.pid) in leaders and process.status() != psutil.STATUS_ZOMBIE:
                left.append(process.pid)
        except (psutil.Error, ProcessLookupError):
            continue
    return left


def test_two_gateways_share_the_port(settings: Settings) -> None:
    url = f"http://127.0.0.1:{settings.gateway_port}"
    members: list[dict[str, object]] = []
    try:
        up = cluster(settings, "up", "--gateways", "2", "--workers", "1", "--pool", "1")
        assert up.returncode == 0, up.stdout + up.stderr

        status = json.loads(cluster(settings, "status", "--json").stdout)
        members = status["members"]
        gateways = {m["name"]: m["pid"] for m in members if m["service"] == "gateway"}
        assert set(gateways) == GATEWAYS
        beats = {i["instance"]: i["pid"] for i in status["instances"] if i["service"] == "gateway"}
        assert beats == gateways, "each gateway process beats under its own name"
        table = cluster(settings, "status")
        assert all(name in table.stdout for name in GATEWAYS), table.stdout

        with ExitStack() as stack:
            pinned = clients_on_each_gateway(url, stack)
            submitted_on, polled_on = pinned["gateway-1"], pinned["gateway-2"]
            slow = BatchRequest(kind=JobKind.IO, count=1, params=JobParams(io_ms=1500))
            batch_id = submitted_on.submit(slow).batch_id
            started = time.monotonic()
            answer = polled_on.status(batch_id, wait_s=30)
            waited = time.monotonic() - started
            assert answer.status == BatchState.DONE, answer
            assert waited < 10, f"the long-poll was not woken: {waited:.1f}s"

        totals = accepted_by_instance(url)
        assert set(totals) == GATEWAYS and all(totals.values()), totals
        for _ in range(4):  # new connections, so both processes serve the page
            assert httpx.get(f"{url}/", timeout=5).status_code == 200
        overview = httpx.get(f"{url}/api/overview", timeout=5).json()
        assert {i["instance"] for i in overview["instances"]} >= GATEWAYS

        logs = cluster(settings, "logs", "--batch", batch_id)
        assert "batch_accepted" in logs.stdout and "batch_completed" in logs.stdout
    finally:
        down = cluster(settings, "down")
    assert down.returncode == 0, down.stderr
    pids = [int(str(m["pid"])) for m in members]
    assert not any(pid_alive(pid) for pid in pids)
    assert session_pids(pids) == []


def test_one_command_runs_the_group(settings: Settings) -> None:
    """A container's way: `python -m services.gateway` with COORD_GATEWAYS=2 starts two,
    replaces one that dies and stops both on SIGTERM."""
    env = {
        **os.environ,
        "COORD_NAMESPACE": settings.namespace,
        "COORD_GATEWAY_PORT": str(settings.gateway_port),
        "COORD_AMQP_URL": settings.amqp_url.get_secret_value(),
        "COORD_REDIS_URL": settings.redis_url.get_secret_value(),
        "COORD_INSTANCE": "box",
        "COORD_GATEWAYS": "2",
        "COORD_LOG_FORMAT": "json",
    }
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "services.gateway"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{settings.gateway_port}"
    try:
        first = wait_for_gateways(url, {"box-1", "box-2"})
        children = {p.pid for p in psutil.Process(supervisor.pid).children()}
        assert set(first.values()) <= children
        os.kill(first["box-1"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            again = wait_for_gateways(url, {"box-1", "box-2"})
            if again["box-1"] != first["box-1"]:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the killed gateway process was not replaced")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=40) == 0
        assert session_pids([supervisor.pid]) == []
    finally:
        if supervisor.poll() is None:
            os.killpg(supervisor.pid, signal.SIGKILL)
            supervisor.wait()


def wait_for_gateways(url: str, names: set[str], timeout_s: float = 60) -> dict[str, int]:
    """Instance name -> pid of the fresh gateway heartbeats, once ``names`` all beat."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with GatewayClient(url, timeout_s=2) as client:
                fresh = {
                    beat.instance: beat.pid
                    for beat in client.instances().instances
                    if beat.service == "gateway" and time.time() - beat.last_seen < 2
                }
            if names <= set(fresh):
                return fresh
        except Exception:
            pass
        time.sleep(0.25)
    pytest.fail(f"gateways {sorted(names)} did not beat within {timeout_s:.0f}s")
